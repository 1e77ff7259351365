"""The plan of a fused step: the device-side tables that let one kernel launch update a whole list of tensors.

A :class:`Plan` holds one :class:`Launch` per (device, dtype) sub-group of the tensors: an int64 tensor on the device
with the pointer table, the sizes and the block table (laid out as ``radam.fused.kernel`` reads it), and every
argument of the launch that does not change between steps. :func:`radam.fused.build_plan` checks the tensors
(:func:`radam.fused.checks.check_tensors`) and builds one; :func:`radam.fused.point_at_gradients` rewrites its
gradient row when autograd has given the gradients new memory. The plans a step keeps are kept by
:mod:`radam.fused.cache` (for :func:`radam.fused.fused_radam`) and :mod:`radam.fused.group_step` (for
``radam.RAdam``).
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from radam.fused import tuning as _tuning
from radam.fused.checks import STATE_DTYPES, capturing, check_tensors
from radam.fused.series import log_q_series
from radam.fused.tuning import STEP_BLOCK, Tuning

__all__ = ["GRAD_ROW", "Launch", "Plan", "build_plan", "fits", "point_at_gradients"]


@dataclass
class Launch:
    """One kernel launch: the tensors of one (device, dtype) sub-group, the device-side plan for them, and every
    argument of the launch that does not change from step to step."""

    device: torch.device
    param_dtype: torch.dtype
    state_dtype: torch.dtype
    step_dtype: torch.dtype
    n_tensors: int
    n_blocks: int
    aligned: bool
    plan: torch.Tensor  # int64 on the device (layout in radam.fused.kernel)
    counter: torch.Tensor  # int32[1] on the device, zero between launches
    series: torch.Tensor  # float64[N_SERIES] on the device
    members: list[int]  # positions, in the lists given to fused_radam, of this launch's tensors
    kernel: Any  # called as kernel[grid](*arguments, **constants)
    grid: tuple[int]
    constants: dict[str, Any]  # the constexpr arguments the plan fixes (dtypes, rows, block size, warps)
    keep_alive: list[torch.Tensor] = field(default_factory=list)  # host copies a captured graph reads
    calls: dict[tuple, dict[str, Any]] = field(default_factory=dict)  # all constexpr arguments, per option flags


@dataclass
class Plan:
    launches: list[Launch]
    tuning: Tuning
    amsgrad: bool
    n_tensors: int  # tensors per list
    # what a reuse is checked against, for every tensor in the order fused_radam lists them:
    addresses: list[int]  # data_ptr
    numels: list[int]
    contiguous: list[bool]
    strided: list[tuple[int, tuple[int, ...]]]  # (position, strides) of the tensors that are not contiguous
    captured: bool = False


_SERIES: dict[torch.device, torch.Tensor] = {}
_KERNELS: dict[str, Any] = {}
_SM_COUNTS: dict[torch.device, int] = {}
GRAD_ROW = 1  # the gradients' row of the pointer table (radam.fused_kernel.GRAD)


def _kernel(device: torch.device):
    mode = "interpreter" if device.type == "cpu" else "compiled"
    if mode not in _KERNELS:
        from radam.fused import kernel as fused_kernel

        build = fused_kernel.interpreted_kernel if mode == "interpreter" else fused_kernel.compiled_kernel
        _KERNELS[mode] = build()
    return _KERNELS[mode]


def _series(device: torch.device) -> torch.Tensor:
    if device not in _SERIES:
        _SERIES[device] = torch.tensor(log_q_series(), dtype=torch.float64, device=device)
    return _SERIES[device]


def _programs(device: torch.device, n_blocks: int, tuning: Tuning) -> int:
    """Programs of a launch over ``n_blocks`` blocks: at most one per block, and at most ``tuning.max_programs``, or
    ``tuning.programs_per_sm`` per multiprocessor on a GPU."""
    if tuning.max_programs is not None:
        return min(n_blocks, tuning.max_programs)
    if device.type != "cuda":
        return n_blocks
    if device not in _SM_COUNTS:
        _SM_COUNTS[device] = torch.cuda.get_device_properties(device).multi_processor_count
    return min(n_blocks, _SM_COUNTS[device] * tuning.programs_per_sm)


def _as_real(tensor: torch.Tensor) -> torch.Tensor:
    return torch.view_as_real(tensor) if tensor.is_complex() else tensor


def _torch_to_triton_dtype(dtype: torch.dtype):
    import triton.language as tl

    return {
        torch.float32: tl.float32,
        torch.float16: tl.float16,
        torch.bfloat16: tl.bfloat16,
        torch.float64: tl.float64,
    }[dtype]


def _to_device(values: list[int], device: torch.device, capturing: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """An int64 device tensor holding ``values``, and the host tensor it was copied from (to keep alive).

    The host tensor is pinned: an asynchronous copy needs it, and a copy recorded in a CUDA graph (a plan built
    during capture, when the gradients were first allocated inside it) is refused from pageable memory. A captured
    copy reads the host tensor again at every replay, which is why captured plans keep it for good (``_CAPTURED``).
    Where this torch cannot pin memory during a capture, the error says how to avoid building the plan there.
    """
    host = _int64_tensor(values)
    if device.type == "cpu":
        return host, host
    try:
        host = host.pin_memory()
    except RuntimeError as error:
        if not capturing:
            raise
        raise RuntimeError(
            "fused RAdam met tensors inside a CUDA graph capture that no eager step had shown it, and could not pin "
            f"host memory for their plan during the capture ({error}). Run one eager step with the same parameter, "
            "gradient and state tensors before capturing (the warm-up torch.cuda.graph asks for), so that the plan "
            "exists before the capture"
        ) from error
    return host.to(device, non_blocking=True), host


def _build_plan(lists: list[list[torch.Tensor]], amsgrad: bool, tuning: Tuning) -> Plan:
    """Check the tensors and lay out one launch per (device, parameter dtype, step dtype) sub-group."""
    check_tensors(lists, amsgrad)
    groups: dict[tuple, list[int]] = {}  # (device, real dtype, step dtype) -> positions
    for i, (param, step) in enumerate(zip(lists[0], lists[4])):
        groups.setdefault((param.device, _as_real(param).dtype, step.dtype), []).append(i)
    n = len(lists[0])

    row_lists = [lists[r] for r in (0, 1, 2, 3, 4)] + ([lists[5]] if amsgrad else [])
    launches = []
    for (device, param_dtype, step_dtype), members in groups.items():
        recording = capturing(device)
        table: list[int] = []
        for row in row_lists:
            table.extend(_as_real(row[i]).data_ptr() for i in members)
        numels = [_as_real(lists[0][i]).numel() for i in members]
        block_tensor: list[int] = []
        block_chunk: list[int] = []
        for position, numel in enumerate(numels):
            chunks = -(-numel // tuning.block_size)
            block_tensor.extend([position] * chunks)
            block_chunk.extend(range(chunks))
        if not block_tensor:  # only empty tensors: one idle program still advances the step counts
            block_tensor, block_chunk = [0], [0]
        aligned = _aligned(table[: 4 * len(members)]) and _aligned(table[5 * len(members) :])
        plan, host = _to_device(table + numels + block_tensor + block_chunk, device, recording)
        launches.append(
            Launch(
                device=device,
                param_dtype=param_dtype,
                state_dtype=STATE_DTYPES[param_dtype],
                step_dtype=step_dtype,
                n_tensors=len(members),
                n_blocks=len(block_tensor),
                aligned=aligned,
                plan=plan,
                counter=torch.zeros(1, dtype=torch.int32, device=device),
                series=_series(device),
                members=members,
                kernel=_kernel(device) if tuning.kernel is None else tuning.kernel,
                grid=(_programs(device, len(block_tensor), tuning),),
                constants=dict(
                    PARAM_DTYPE=_torch_to_triton_dtype(param_dtype),
                    STATE_DTYPE=_torch_to_triton_dtype(STATE_DTYPES[param_dtype]),
                    STEP_DTYPE=_torch_to_triton_dtype(step_dtype),
                    N_ROWS=_n_rows(amsgrad),
                    AMSGRAD=amsgrad,
                    BLOCK=tuning.block_size,
                    STEP_BLOCK=STEP_BLOCK,
                    num_warps=tuning.num_warps,
                    enable_fp_fusion=False,
                ),
                keep_alive=[host],
            )
        )
    flat = [tensor for lst in lists for tensor in lst]
    contiguous = list(map(torch.Tensor.is_contiguous, flat))
    return Plan(
        launches=launches,
        tuning=tuning,
        amsgrad=amsgrad,
        n_tensors=n,
        addresses=list(map(torch.Tensor.data_ptr, flat)),
        numels=list(map(torch.Tensor.numel, flat)),
        contiguous=contiguous,
        strided=[(i, flat[i].stride()) for i, c in enumerate(contiguous) if not c],
    )


def build_plan(lists: list[list[torch.Tensor]], amsgrad: bool, tuning: Tuning | None = None) -> Plan:
    """A new plan for ``lists`` (params, grads, exp_avgs, exp_avg_sqs, state_steps[, max_exp_avg_sqs]), after
    checking every tensor (``RuntimeError`` naming the first inconsistent one). Nothing is cached here."""
    return _build_plan(lists, amsgrad, tuning or _tuning.DEFAULT_TUNING)


def _n_rows(amsgrad: bool) -> int:
    from radam.fused import kernel as fused_kernel

    return fused_kernel.N_ROWS_AMSGRAD if amsgrad else fused_kernel.N_ROWS_PLAIN


def fits(flat: list[torch.Tensor], plan: Plan, gradients_too: bool) -> bool:
    """Whether every tensor has the address (the gradients only if ``gradients_too``), size and layout that
    ``plan`` was built for."""
    if (
        list(map(torch.Tensor.numel, flat)) != plan.numels
        or list(map(torch.Tensor.is_contiguous, flat)) != plan.contiguous
    ):
        return False
    if any(flat[i].stride() != strides for i, strides in plan.strided):
        return False
    addresses = list(map(torch.Tensor.data_ptr, flat))
    if gradients_too:
        return addresses == plan.addresses
    n = plan.n_tensors  # the gradients are positions n to 2n - 1
    return addresses[:n] == plan.addresses[:n] and addresses[2 * n :] == plan.addresses[2 * n :]


def point_at_gradients(
    plan: Plan, params: list[torch.Tensor], grads: list[torch.Tensor], addresses: list[int] | None = None
) -> None:
    """Point a plan at new gradient tensors (autograd frees and re-allocates them between steps), in place.

    The caller has checked that the gradients have the dtypes, numbers of elements and layouts the plan was built
    for (``radam.RAdam``: torch refuses a ``.grad`` of another dtype or shape; :func:`fused_radam`: checked against
    the plan); ``addresses`` are their ``data_ptr()`` when the caller has them already. ``RuntimeError`` when a CUDA
    graph is recording or has recorded the plan (build a new one: a graph must read the plan it recorded, and a
    copy into it while recording would be replayed from a host buffer nobody keeps).
    """
    if plan.captured or any(capturing(launch.device) for launch in plan.launches):
        raise RuntimeError("fused_radam: a plan that a CUDA graph records or has recorded cannot be pointed elsewhere")
    if addresses is None:
        addresses = list(map(torch.Tensor.data_ptr, grads))
    for launch in plan.launches:
        row_addresses = addresses if len(launch.members) == len(addresses) else [addresses[i] for i in launch.members]
        row = _int64_tensor(row_addresses)
        if launch.device.type == "cuda":
            row = row.pin_memory()
        launch.plan[GRAD_ROW * launch.n_tensors : (GRAD_ROW + 1) * launch.n_tensors].copy_(row, non_blocking=True)
        launch.aligned = launch.aligned and _aligned(row_addresses)
    n = len(params)
    plan.addresses[n : 2 * n] = addresses


def _int64_tensor(values: list[int]) -> torch.Tensor:
    """A CPU int64 tensor of ``values`` (by way of numpy, twice as fast as ``torch.tensor`` for a list of ints)."""
    return torch.from_numpy(np.fromiter(values, dtype=np.int64, count=len(values)))


def _aligned(addresses: list[int]) -> bool:
    """Whether every address is a multiple of 16 bytes (the low four bits of all of them, or-ed, are zero)."""
    return not functools.reduce(operator.or_, addresses, 0) & 15
