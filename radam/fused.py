r"""The fused RAdam step: every parameter of a (device, dtype) group updated by ONE Triton kernel launch.

Why a fused step
----------------
An RAdam step reads the parameter :math:`\theta`, the gradient :math:`g` and the two moments :math:`m, v`, and writes
:math:`\theta, m, v`: 28 bytes per float32 parameter, and almost no arithmetic. Its speed limit is therefore memory
bandwidth, and the best possible step time is

.. math:: T_{\min} = \frac{28\ \text{bytes} \times N_{\text{params}}}{\text{copy bandwidth}}.

``torch.optim.RAdam`` misses this floor in two ways. Its for-loop path launches about fifteen small kernels per
tensor, and each kernel makes a full pass over memory (``m / bc1``, ``sqrt(v)``, ``+ eps``, products, ...); its
foreach path groups the launches over tensors but still makes a pass over memory per operation. A model with
thousands of small tensors is dominated by launch overhead, a model with large tensors by the extra passes.
This module does the whole step in one pass and one launch.

How the kernel works
--------------------
The kernel (``radam._fused_kernel.radam_step_kernel``) is a *multi-tensor* kernel, like apex's and torch's fused
Adam: one launch updates a whole list of tensors of different sizes.

1. **A plan on the device.** The host writes, once, an int64 tensor holding a *pointer table* (the addresses of every
   parameter, gradient, ``exp_avg``, ``exp_avg_sq``, step count, and ``max_exp_avg_sq`` under amsgrad), the number of
   elements of each tensor, and a *block table*: block ``b`` is chunk ``c_b`` (elements ``c_b * BLOCK`` to
   ``(c_b + 1) * BLOCK - 1``) of tensor ``i_b``. A tensor of ``n`` elements has
   :math:`\lceil n / \text{BLOCK} \rceil` blocks, so a list of any shapes becomes one flat list of equal blocks.
2. **A grid-stride loop.** The launch runs ``P`` programs (a few per multiprocessor, ``PROGRAMS_PER_SM``);
   program ``p`` updates blocks ``p, p + P, p + 2P, ...``, so every multiprocessor stays busy whatever the shapes.
3. **One pass over memory per block.** The program looks up the block's tensor and chunk, loads the chunk of
   :math:`\theta, g, m, v` (16-byte accesses where the addresses allow; the body is compiled twice, without a mask
   for full blocks and with one for the last block of a tensor, because a mask that may cut between any two
   elements rules out wide accesses), and while those loads are in flight reads
   the tensor's step count :math:`t-1` and computes, in float64, :math:`\beta_1^t, \beta_2^t` (binary
   exponentiation), the bias corrections, :math:`\rho_t` and the rectifier :math:`r_t`: a few hundred scalar
   operations against 28 KiB of memory traffic. It then applies the update below in registers and stores
   :math:`\theta, m, v` (and :math:`v^{\max}`). Because the step count and the learning rate (when it is a tensor)
   are read on the device, the step never synchronises with the host and can be captured in a CUDA graph.
4. **The step counts.** Every block of tensor :math:`i` needs the *old* count, so no program may increment it
   while others could still read it. Each program, when done, adds one to a counter with an atomic operation; the
   program that sees it was last increments every step count and resets the counter to zero for the next launch.

The update, per element, with :math:`\hat m_t = m_t / (1 - \beta_1^t)` (the arithmetic and its order are those of
``torch.optim.RAdam``'s single-tensor path, so the two agree to rounding):

.. math::
   g_t &= \pm \nabla_\theta f \;(+\, \lambda \theta_{t-1} \text{ for L2 decay}), \qquad
   \theta' = \theta_{t-1} (1 - \gamma \lambda) \text{ (decoupled decay, on steps that update)} \\
   m_t &= m_{t-1} + (1-\beta_1)(g_t - m_{t-1}), \qquad v_t = \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2 \\
   \theta_t &= \begin{cases}
     \theta' - \gamma\, r_t\, \hat m_t\, \dfrac{\sqrt{1-\beta_2^t}}{\sqrt{v_t} + \epsilon}
       & \rho_t > \text{threshold} \text{ (with } \max(v^{\max}_{t-1}, v_t) \text{ for amsgrad)} \\
     \theta' - \gamma\, \hat m_t & \text{otherwise, degenerate = "sgd"} \\
     \theta_{t-1} & \text{otherwise, degenerate = "skip"}
   \end{cases}

with :math:`\rho_\infty = 2/(1-\beta_2) - 1`, :math:`\rho_t = \rho_\infty - 2 t \beta_2^t / (1 - \beta_2^t)`, and
:math:`r_t` either the paper's

.. math:: r_t = \sqrt{\frac{(\rho_t - 4)(\rho_t - 2)\,\rho_\infty}{(\rho_\infty - 4)(\rho_\infty - 2)\,\rho_t}}

or the exact :math:`r_t = \sqrt{\mathrm{Var}[\psi](\rho_\infty) / \mathrm{Var}[\psi](\rho_t)}` of
:func:`radam.theory.r_t_exact`. The numerator depends on :math:`\beta_2` alone and comes from the host
(:func:`radam.theory.variance_psi_exact`); the denominator changes every step and is computed in the kernel. It
needs :math:`\log\Gamma`, which a GPU kernel does not have in float64 and Triton's interpreter does not have at all,
so the kernel uses only :math:`+,-,\times,/`:

.. math::
   \mathrm{Var}[\psi](\rho) = \frac{\rho}{\rho - 2}\,\bigl(1 - q(x)\bigr), \quad x = \frac{\rho}{2}, \quad
   q(x) = (x-1)\frac{\Gamma(x-\frac12)^2}{\Gamma(x)^2} = \underbrace{\frac{(x-1) P^2}{y-1}}_{F}\; q(y), \quad
   P = \prod_{k=0}^{s-1} \frac{x+k}{x+k-\frac12}, \quad y = x + s \ge 10,

where the product comes from :math:`\Gamma(z+1) = z\,\Gamma(z)`, and
:math:`\log q(y) = \log(1 - 1/y) + 2 \log\bigl(\sqrt{y}\,\Gamma(y-\frac12)/\Gamma(y)\bigr)` is a power series in
:math:`1/y` (:func:`log_q_series`), so that :math:`1 - q(x) = (1 - F) - F\,\mathrm{expm1}(\log q(y))` keeps full
precision even where :math:`q` is within :math:`10^{-6}` of 1 (:math:`F = 1` exactly when no shift is needed).

Precision. The scalars are computed in float64 and rounded to the arithmetic's dtype, as torch rounds its
Python-float scalars. The element-wise arithmetic runs in float32 (float64 for float64 parameters) and rounds where
torch's kernels round: a fused multiply-add exactly where they use one (``lerp``, ``addcmul``, ``add`` with
``alpha``), IEEE division and square root, :math:`\epsilon`-denominator inverted then multiplied (torch's
``scalar / tensor``); the compiler's own contraction of multiply-adds is switched off. The fused step therefore
agrees with the single-tensor path to a unit in the last place, element by element. Half-precision parameters
(float16, bfloat16) are read, updated in float32 against float32 state, and rounded once (to nearest even) when
stored. Complex parameters are updated as pairs of reals, as torch does.

Host overhead
-------------
Building the plan costs several Python calls per tensor, which would dominate a step over thousands of small
tensors, so plans are kept, and with them every argument of the launch that does not change between steps (the
kernel, the grid, the constant arguments; :class:`Tuning` says how the step is cut and launched). ``radam.RAdam``
keeps one plan per fused param group (``radam._fused_group``): a later step reads the gradients once and, when they
are the tensors of the last step, nothing else per tensor; every storage the plan points at is watched, so that a
tensor given new memory rebuilds it. The functional :func:`fused_radam` keeps a few plans per list of tensors
(:class:`PlanCache`) and re-uses one when every tensor still has the address, size and layout it was built for,
rewriting only its gradient row when autograd has re-allocated the gradients. A plan that a CUDA graph has
recorded is kept for the life of the process and never rewritten, because the graph reads it.

Testing without a GPU
---------------------
With the environment variable ``TRITON_INTERPRET=1``, :func:`fused_radam` accepts CPU tensors and runs the same
kernel in Triton's interpreter (numpy), with the same pointer table and block table; this is how the kernel's logic
is tested on a CPU. Triton itself is imported only when a fused step is first taken.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import operator
import os
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from radam._step_scalars import check_dense_gradients, check_variant_options, variance_at_rho_inf

__all__ = [
    "BLOCK_SIZE",
    "DEFAULT_TUNING",
    "PROGRAMS_PER_SM",
    "PlanCache",
    "Tuning",
    "build_plan",
    "check_fused_supported",
    "check_lr",
    "fused_radam",
    "interpreter_enabled",
    "launch_plan",
    "log_q_series",
    "point_at_gradients",
]

BLOCK_SIZE = 1024
"""Elements per block, 28 KiB of float32 traffic. With 8 warps a thread holds 4 elements of each tensor (one 16-byte
access), which keeps registers low (64 for float32) and so many warps resident per multiprocessor."""
PROGRAMS_PER_SM = 8
"""Programs launched per GPU multiprocessor (at most one per block); each loops over its share of the blocks."""
NUM_WARPS = 8
"""Warps per program."""
STEP_BLOCK = 1024  # step counts advanced per iteration by the last program
_MAX_PLANS_PER_GROUP = 4  # addresses that alternate between steps (gradients freed and re-allocated) stay cached
_MAX_GROUPS = 256


@dataclass(frozen=True)
class Tuning:
    """How the fused step is cut into blocks and launched: the speed, never the result.

    ``block_size`` elements per block (a power of two, at least 16), ``programs_per_sm`` programs per GPU
    multiprocessor and ``num_warps`` warps per program; ``max_programs`` caps the programs of a launch (default
    ``programs_per_sm`` per multiprocessor on a GPU, one per block in the interpreter). ``kernel`` replaces the
    Triton kernel: anything called as ``kernel[grid](*arguments, **constants)`` (``python -m radam.bench
    --host-only`` passes one that does nothing, to time the host's work alone); ``None`` is Triton's.
    """

    block_size: int = BLOCK_SIZE
    programs_per_sm: int = PROGRAMS_PER_SM
    num_warps: int = NUM_WARPS
    max_programs: int | None = None
    kernel: Any = None

    def __post_init__(self) -> None:
        size = self.block_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 16 or size & (size - 1):
            raise ValueError(f"block_size must be a power of two of at least 16, got {size!r}")
        for name in ("programs_per_sm", "num_warps", "max_programs"):
            value = getattr(self, name)
            if value is None and name == "max_programs":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")


DEFAULT_TUNING = Tuning()
"""The tuning every fused step uses unless it is given another."""

_SUPPORTED = {
    torch.float32: torch.float32,
    torch.float16: torch.float32,
    torch.bfloat16: torch.float32,
    torch.float64: torch.float64,
    torch.complex64: torch.float32,
    torch.complex128: torch.float64,
}
"""Parameter dtype -> dtype of the optimizer state and of the arithmetic."""


def interpreter_enabled() -> bool:
    """Whether ``TRITON_INTERPRET`` asks for Triton's interpreter (then the fused step runs on CPU tensors)."""
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "yes", "on")


def _triton_import_error() -> str | None:
    try:
        import triton  # noqa: F401
        import triton.language  # noqa: F401
    except Exception as error:  # ImportError, or a broken install
        return f"{type(error).__name__}: {error}"
    return None


def check_fused_supported(params: Sequence[Tensor]) -> None:
    """Raise ``RuntimeError`` with the reason when the fused step cannot update ``params`` here.

    The fused step needs Triton, and CUDA tensors (or CPU tensors under ``TRITON_INTERPRET=1``, for testing) of a
    supported dtype: float32, float16, bfloat16, float64, complex64 or complex128.
    """
    params = list(params)
    problem = _triton_import_error()
    if problem is not None:
        raise RuntimeError(
            f"fused=True needs Triton, which cannot be imported ({problem}). Install it with `pip install triton` "
            "(it ships with torch on Linux CUDA builds), or use fused=False."
        )
    devices = set()
    for index, param in enumerate(params):
        if not isinstance(param, Tensor):
            raise RuntimeError(f"fused=True: parameter {index} is a {type(param).__name__}, not a tensor")
        if param.dtype not in _SUPPORTED:
            supported = ", ".join(str(dtype).removeprefix("torch.") for dtype in _SUPPORTED)
            raise RuntimeError(
                f"fused=True supports parameters of dtype {supported}; parameter {index} is {param.dtype}"
            )
        if param.is_sparse:
            raise RuntimeError(f"fused=True does not support sparse parameters (parameter {index})")
        if param.device not in devices:
            _check_device(param.device, f"parameter {index}")
            devices.add(param.device)


def _check_device(device: torch.device, what: str) -> None:
    if device.type == "cuda":
        if interpreter_enabled():
            raise RuntimeError(
                f"fused=True: {what} is on {device}, but TRITON_INTERPRET=1 is set; the fused step runs in Triton's "
                "interpreter only on CPU tensors. Unset TRITON_INTERPRET to use the GPU."
            )
        if not torch.cuda.is_available():
            raise RuntimeError(f"fused=True: {what} is on {device} but CUDA is not available")
        major, _ = torch.cuda.get_device_capability(device)
        if major < 7:
            raise RuntimeError(f"fused=True needs a GPU of compute capability 7.0 or newer (Triton); {device} is older")
        return
    if device.type == "cpu" and interpreter_enabled():
        return
    if device.type == "cpu":
        raise RuntimeError(
            f"fused=True needs CUDA tensors; {what} is on the CPU. Move the model to a GPU, or use fused=False "
            "(set TRITON_INTERPRET=1 only to test the kernel on the CPU, very slowly)."
        )
    raise RuntimeError(f"fused=True needs CUDA tensors; {what} is on {device}")


def log_q_series(n_terms: int = 16) -> np.ndarray:
    r"""Coefficients :math:`d_1, \dots, d_N` of :math:`\log q(y) = \sum_{n=1}^N d_n y^{-n}`, used for :math:`y \ge 10`.

    .. math:: \log q(y) = \log\Bigl(1 - \frac1y\Bigr) + 2\Bigl(\log\frac{\Gamma(y-\frac12)}{\Gamma(y)}
              + \frac12 \log y\Bigr) = \sum_{n \ge 1} \Bigl(-\frac1n + 2 c_n\Bigr) y^{-n},

    with :math:`c_n` the Bernoulli-polynomial coefficients of the large-:math:`y` expansion of the log-gamma ratio
    that :mod:`radam.theory` uses for the same quantity. At :math:`y \ge 10` sixteen terms give about 1e-16.
    """
    from radam.theory import _LOG_GAMMA_RATIO_COEFFS

    gamma_terms = np.zeros(n_terms)
    count = min(n_terms, len(_LOG_GAMMA_RATIO_COEFFS))
    gamma_terms[:count] = _LOG_GAMMA_RATIO_COEFFS[:count]
    n = np.arange(1, n_terms + 1, dtype=np.float64)
    return -1.0 / n + 2.0 * gamma_terms


@dataclass
class _Launch:
    """One kernel launch: the tensors of one (device, dtype) sub-group, the device-side plan for them, and every
    argument of the launch that does not change from step to step."""

    device: torch.device
    param_dtype: torch.dtype
    state_dtype: torch.dtype
    step_dtype: torch.dtype
    n_tensors: int
    n_blocks: int
    aligned: bool
    plan: Tensor  # int64 on the device (layout in radam._fused_kernel)
    counter: Tensor  # int32[1] on the device, zero between launches
    series: Tensor  # float64[N_SERIES] on the device
    members: list[int]  # positions, in the lists given to fused_radam, of this launch's tensors
    kernel: Any  # called as kernel[grid](*arguments, **constants)
    grid: tuple[int]
    constants: dict[str, Any]  # the constexpr arguments the plan fixes (dtypes, rows, block size, warps)
    keep_alive: list[Tensor] = field(default_factory=list)  # host copies a captured graph reads
    calls: dict[tuple, dict[str, Any]] = field(default_factory=dict)  # all constexpr arguments, per option flags


@dataclass
class _Plan:
    launches: list[_Launch]
    tuning: Tuning
    amsgrad: bool
    n_tensors: int  # tensors per list
    # what a reuse is checked against, for every tensor in the order fused_radam lists them:
    addresses: list[int]  # data_ptr
    numels: list[int]
    contiguous: list[bool]
    strided: list[tuple[int, tuple[int, ...]]]  # (position, strides) of the tensors that are not contiguous
    captured: bool = False


_SERIES: dict[torch.device, Tensor] = {}
_KERNELS: dict[str, Any] = {}
_SM_COUNTS: dict[torch.device, int] = {}
GRAD_ROW = 1  # the gradients' row of the pointer table (radam._fused_kernel.GRAD)
_DTYPE = operator.attrgetter("dtype")


def _kernel(device: torch.device):
    mode = "interpreter" if device.type == "cpu" else "compiled"
    if mode not in _KERNELS:
        from radam import _fused_kernel

        build = _fused_kernel.interpreted_kernel if mode == "interpreter" else _fused_kernel.compiled_kernel
        _KERNELS[mode] = build()
    return _KERNELS[mode]


def _series(device: torch.device) -> Tensor:
    if device not in _SERIES:
        from radam import _fused_kernel

        _SERIES[device] = torch.tensor(log_q_series(_fused_kernel.N_SERIES.value), dtype=torch.float64, device=device)
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


def _capturing(device: torch.device) -> bool:
    return device.type == "cuda" and torch.cuda.is_current_stream_capturing()


def _is_dense(tensor: Tensor) -> bool:
    """Whether the tensor's elements fill a block of memory without gaps or overlaps (any order of dimensions)."""
    if tensor.is_contiguous():
        return True
    expected = 1
    for stride, size in sorted((s, n) for s, n in zip(tensor.stride(), tensor.shape) if n != 1):
        if stride != expected:
            return False
        expected *= size
    return True


def _as_real(tensor: Tensor) -> Tensor:
    return torch.view_as_real(tensor) if tensor.is_complex() else tensor


def _torch_to_triton_dtype(dtype: torch.dtype):
    import triton.language as tl

    return {
        torch.float32: tl.float32,
        torch.float16: tl.float16,
        torch.bfloat16: tl.bfloat16,
        torch.float64: tl.float64,
    }[dtype]


def _to_device(values: list[int], device: torch.device, capturing: bool) -> tuple[Tensor, Tensor]:
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


def _build_plan(lists: list[list[Tensor]], amsgrad: bool, tuning: Tuning) -> _Plan:
    """Validate the tensors and lay out one launch per (device, parameter dtype, step dtype) sub-group."""
    names = ["params", "grads", "exp_avgs", "exp_avg_sqs", "state_steps"] + (["max_exp_avg_sqs"] if amsgrad else [])
    n = len(lists[0])
    check_dense_gradients(lists[1])
    for name, tensors in zip(names, lists):
        if len(tensors) != n:
            raise ValueError(f"fused_radam: {name} has {len(tensors)} tensors, params has {n}")
        for i, tensor in enumerate(tensors):
            if tensor.data_ptr() == 0 and tensor.numel():  # a wrapper (a DTensor): the kernel would read address 0
                raise RuntimeError(
                    f"fused_radam: {name}[{i}] is a {type(tensor).__name__}, whose elements live in other tensors; "
                    "the kernel steps plain tensors. For a DTensor pass each rank's local tensors (.to_local(); "
                    "radam.RAdam does so for DTensor parameters), or use fused=False"
                )
    check_fused_supported(lists[0])
    groups: dict[tuple, list[int]] = {}
    for i in range(n):
        param, grad, exp_avg, exp_avg_sq, step = (lst[i] for lst in lists[:5])
        state_dtype = _SUPPORTED[param.dtype]
        if grad.dtype != param.dtype or grad.shape != param.shape:
            raise RuntimeError(f"fused_radam: grad {i} is {grad.dtype} {tuple(grad.shape)}, its parameter is "
                               f"{param.dtype} {tuple(param.shape)}")
        state = [exp_avg, exp_avg_sq] + ([lists[5][i]] if amsgrad else [])
        for tensor in state:
            expected = param.dtype if param.is_complex() else state_dtype
            if tensor.dtype != expected or tensor.shape != param.shape:
                raise RuntimeError(
                    f"fused_radam: the state of parameter {i} ({param.dtype}) must be {expected} of shape "
                    f"{tuple(param.shape)}; got {tensor.dtype} {tuple(tensor.shape)}"
                )
        for tensor in [grad, *state, step]:
            if tensor.device != param.device:
                raise RuntimeError(
                    f"fused_radam: parameter {i} is on {param.device}, its grad or state on {tensor.device}"
                )
        if step.numel() != 1 or step.dtype not in (torch.float32, torch.float64):
            raise RuntimeError(
                f"fused_radam: state_steps[{i}] must be a 1-element float32/float64 tensor on the device"
            )
        for tensor in [param, grad, *state]:
            if not _is_dense(tensor) or tensor.stride() != param.stride():
                raise RuntimeError(
                    f"fused_radam: parameter {i}, its gradient and its state must be dense tensors with the same "
                    f"strides (got strides {param.stride()} and {tensor.stride()})"
                )
        groups.setdefault((param.device, _as_real(param).dtype, step.dtype), []).append(i)

    row_lists = [lists[r] for r in (0, 1, 2, 3, 4)] + ([lists[5]] if amsgrad else [])
    launches = []
    for (device, param_dtype, step_dtype), members in groups.items():
        capturing = _capturing(device)
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
        aligned = _aligned(table[: 4 * len(members)]) and _aligned(table[5 * len(members):])
        plan, host = _to_device(table + numels + block_tensor + block_chunk, device, capturing)
        launches.append(
            _Launch(
                device=device,
                param_dtype=param_dtype,
                state_dtype=_SUPPORTED[param_dtype],
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
                    STATE_DTYPE=_torch_to_triton_dtype(_SUPPORTED[param_dtype]),
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
    contiguous = list(map(Tensor.is_contiguous, flat))
    return _Plan(
        launches=launches,
        tuning=tuning,
        amsgrad=amsgrad,
        n_tensors=n,
        addresses=list(map(Tensor.data_ptr, flat)),
        numels=list(map(Tensor.numel, flat)),
        contiguous=contiguous,
        strided=[(i, flat[i].stride()) for i, c in enumerate(contiguous) if not c],
    )


def _n_rows(amsgrad: bool) -> int:
    from radam import _fused_kernel

    return _fused_kernel.N_ROWS_AMSGRAD if amsgrad else _fused_kernel.N_ROWS_PLAIN


def _fits(flat: list[Tensor], plan: _Plan, gradients_too: bool) -> bool:
    """Whether every tensor has the address (the gradients only if ``gradients_too``), size and layout that
    ``plan`` was built for."""
    if list(map(Tensor.numel, flat)) != plan.numels or list(map(Tensor.is_contiguous, flat)) != plan.contiguous:
        return False
    if any(flat[i].stride() != strides for i, strides in plan.strided):
        return False
    addresses = list(map(Tensor.data_ptr, flat))
    if gradients_too:
        return addresses == plan.addresses
    n = plan.n_tensors  # the gradients are positions n to 2n - 1
    return addresses[:n] == plan.addresses[:n] and addresses[2 * n:] == plan.addresses[2 * n:]


def point_at_gradients(
    plan: _Plan, params: list[Tensor], grads: list[Tensor], addresses: list[int] | None = None
) -> None:
    """Point a plan at new gradient tensors (autograd frees and re-allocates them between steps), in place.

    The caller has checked that the gradients have the dtypes, numbers of elements and layouts the plan was built
    for (``radam.RAdam``: torch refuses a ``.grad`` of another dtype or shape; :func:`fused_radam`: checked against
    the plan); ``addresses`` are their ``data_ptr()`` when the caller has them already. ``RuntimeError`` when a CUDA
    graph is recording or has recorded the plan (build a new one: a graph must read the plan it recorded, and a
    copy into it while recording would be replayed from a host buffer nobody keeps).
    """
    if plan.captured or any(_capturing(launch.device) for launch in plan.launches):
        raise RuntimeError(
            "fused_radam: a plan that a CUDA graph records or has recorded cannot be pointed elsewhere"
        )
    if addresses is None:
        addresses = list(map(Tensor.data_ptr, grads))
    for launch in plan.launches:
        row_addresses = addresses if len(launch.members) == len(addresses) else [addresses[i] for i in launch.members]
        row = _int64_tensor(row_addresses)
        if launch.device.type == "cuda":
            row = row.pin_memory()
        launch.plan[GRAD_ROW * launch.n_tensors:(GRAD_ROW + 1) * launch.n_tensors].copy_(row, non_blocking=True)
        launch.aligned = launch.aligned and _aligned(row_addresses)
    n = len(params)
    plan.addresses[n:2 * n] = addresses


def _int64_tensor(values: list[int]) -> Tensor:
    """A CPU int64 tensor of ``values`` (by way of numpy, twice as fast as ``torch.tensor`` for a list of ints)."""
    return torch.from_numpy(np.fromiter(values, dtype=np.int64, count=len(values)))


def _aligned(addresses: list[int]) -> bool:
    """Whether every address is a multiple of 16 bytes (the low four bits of all of them, or-ed, are zero)."""
    return not functools.reduce(operator.or_, addresses, 0) & 15


class PlanCache:
    """The plans :func:`fused_radam` keeps between calls: a few per list of tensors.

    A plan is re-used while every tensor has the address, size and layout it was built for; when only the
    gradients moved, as they do when autograd frees and re-allocates them between steps, its gradient row is
    rewritten in place (unless a CUDA graph recorded it). Up to ``plans_per_list`` plans are kept per list (so
    that addresses alternating between steps stay cached) and up to ``max_lists`` lists, oldest first out.
    """

    def __init__(self, max_lists: int = _MAX_GROUPS, plans_per_list: int = _MAX_PLANS_PER_GROUP) -> None:
        self.max_lists = max_lists
        self.plans_per_list = plans_per_list
        self.plans: dict[tuple, list[_Plan]] = {}

    def clear(self) -> None:
        self.plans.clear()

    def find(self, lists: list[list[Tensor]], amsgrad: bool, tuning: Tuning) -> _Plan:
        """The cached plan for these tensors, or a new one (checked tensor by tensor): reused as it is when every
        tensor is where and as it was, pointed at the new gradients when only they moved, else built anew."""
        flat = [*itertools.chain.from_iterable(lists)]
        key = (len(lists[0]), amsgrad, tuning, flat[0].data_ptr(), flat[0].device)
        plans = self.plans.get(key)
        if plans is not None:
            for position, plan in enumerate(plans):
                if _fits(flat, plan, gradients_too=True):
                    plans.insert(0, plans.pop(position))
                    return plan
            for position, plan in enumerate(plans):
                if (
                    not plan.captured
                    and not _capturing(flat[0].device)
                    and _fits(flat, plan, gradients_too=False)
                    and list(map(_DTYPE, lists[1])) == list(map(_DTYPE, lists[0]))  # else a new plan names the grad
                ):
                    point_at_gradients(plan, lists[0], lists[1])
                    plans.insert(0, plans.pop(position))
                    return plan
        plan = _build_plan(lists, amsgrad, tuning)
        if plans is None:
            if len(self.plans) >= self.max_lists:
                self.plans.pop(next(iter(self.plans)))
            plans = self.plans[key] = []
        plans.insert(0, plan)
        del plans[self.plans_per_list:]
        return plan


_PLAN_CACHE = PlanCache()
"""The plans of :func:`fused_radam` (``radam.RAdam`` keeps its own, one per param group: ``radam._fused_group``)."""
_CAPTURED: list[_Plan] = []
"""Plans a CUDA graph has recorded: the graph reads their device tensors at every replay, and nothing says when
the graph is gone, so they are kept for the life of the process."""


def fused_radam(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    max_exp_avg_sqs: list[Tensor],
    state_steps: list[Tensor],
    *,
    lr: float | Tensor,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled_weight_decay: bool,
    degenerate: str,
    threshold: float,
    rectifier: str,
    amsgrad: bool,
    maximize: bool,
    capturable: bool,
    block_size: int | None = None,
    max_programs: int | None = None,
    tuning: Tuning | None = None,
) -> None:
    r"""One RAdam step over lists of tensors, in one kernel launch per (device, dtype); the step counts advance.

    The arguments are those of the single-tensor path (``max_exp_avg_sqs`` is empty unless ``amsgrad``), and the
    result is the same to rounding:

    .. math:: \theta_t = \theta' - \gamma\, r_t\, \hat m_t \frac{\sqrt{1-\beta_2^t}}{\sqrt{v_t}+\epsilon}
              \ \text{if}\ \rho_t > \text{threshold}, \quad \theta' - \gamma\,\hat m_t\ \text{(degenerate "sgd")},
              \quad \theta_{t-1}\ \text{(degenerate "skip")}.

    ``lr`` may be a float or a 1-element tensor (on the device: read by the kernel, so a captured CUDA graph sees
    its current value). The step never synchronises with the host, whatever ``capturable`` says: the step counts
    must live on the parameters' device. ``tuning`` (default :data:`DEFAULT_TUNING`) says how the step is cut
    into blocks and launched; ``block_size`` and ``max_programs``, when given, replace its fields of those names.
    """
    if not params:
        return
    check_variant_options(degenerate, threshold, rectifier, amsgrad)
    if amsgrad and len(max_exp_avg_sqs) != len(params):
        raise ValueError("fused_radam: amsgrad needs one max_exp_avg_sq per parameter")
    tuning = tuning or DEFAULT_TUNING
    if block_size is not None or max_programs is not None:
        tuning = dataclasses.replace(
            tuning,
            block_size=tuning.block_size if block_size is None else block_size,
            max_programs=tuning.max_programs if max_programs is None else max_programs,
        )
    lists = [params, grads, exp_avgs, exp_avg_sqs, state_steps] + ([max_exp_avg_sqs] if amsgrad else [])
    plan = _PLAN_CACHE.find(lists, amsgrad, tuning)
    launch_plan(plan, lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay,
                decoupled_weight_decay=decoupled_weight_decay, degenerate=degenerate, threshold=threshold,
                rectifier=rectifier, amsgrad=amsgrad, maximize=maximize)


def build_plan(lists: list[list[Tensor]], amsgrad: bool, tuning: Tuning | None = None) -> _Plan:
    """A new plan for ``lists`` (params, grads, exp_avgs, exp_avg_sqs, state_steps[, max_exp_avg_sqs]), after
    checking every tensor (``RuntimeError`` naming the first inconsistent one). Nothing is cached here."""
    return _build_plan(lists, amsgrad, tuning or DEFAULT_TUNING)


def check_lr(plan: _Plan, lr: float | Tensor) -> None:
    """``ValueError`` for a tensor ``lr`` of more than one element, ``RuntimeError`` for one on a device that is
    neither the CPU nor the parameters' (the kernel reads a device ``lr`` itself)."""
    if not isinstance(lr, Tensor):
        return
    if lr.numel() != 1:
        raise ValueError("fused_radam: a tensor lr must have exactly one element")
    for launch in plan.launches:
        if lr.device != launch.device and lr.device.type != "cpu":
            raise RuntimeError(f"fused_radam: lr is on {lr.device}, the parameters on {launch.device}")


def launch_plan(
    plan: _Plan,
    *,
    lr: float | Tensor,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled_weight_decay: bool,
    degenerate: str,
    threshold: float,
    rectifier: str,
    amsgrad: bool,
    maximize: bool,
) -> None:
    """Run the kernel once per launch of ``plan`` (the tensors it was built for, as they are now), with these options.

    Everything that does not change between steps was worked out when the plan was built; here only the scalars
    are read, and the kernel's constant arguments looked up for the option flags.
    """
    if amsgrad != plan.amsgrad:
        raise ValueError(f"fused_radam: the plan was built for amsgrad={plan.amsgrad}, the step asks for {amsgrad}")
    lr_is_tensor = isinstance(lr, Tensor)
    if lr_is_tensor:
        check_lr(plan, lr)
    exact = rectifier == "exact"
    beta2 = float(beta2)
    threshold = float(threshold)
    scalars = (float(beta1), beta2, float(eps), float(weight_decay), threshold,
               variance_at_rho_inf(beta2, threshold) if exact else 1.0)
    flags = (bool(maximize), weight_decay != 0, bool(decoupled_weight_decay), degenerate == "sgd", exact)
    for launch in plan.launches:
        if launch.device.type == "cuda" and not plan.captured and _capturing(launch.device):
            plan.captured = True
            _CAPTURED.append(plan)
        if lr_is_tensor and lr.device == launch.device:
            lr_value, lr_tensor = 0.0, lr  # read by the kernel at each launch (and at each replay of a CUDA graph)
        else:
            lr_value, lr_tensor = float(lr), launch.counter  # a CPU tensor: reading it does not sync with the GPU
        key = (*flags, lr_tensor is not launch.counter, launch.aligned)
        constants = launch.calls.get(key)
        if constants is None:
            maximize_, weight_decay_, decoupled, sgd, exact_, lr_tensor_, aligned = key
            constants = launch.calls[key] = dict(
                launch.constants, MAXIMIZE=maximize_, WEIGHT_DECAY=weight_decay_, DECOUPLED=decoupled,
                DEGENERATE_SGD=sgd, EXACT=exact_, LR_IS_TENSOR=lr_tensor_, ALIGNED=aligned,
            )
        launch.kernel[launch.grid](
            launch.plan, launch.n_tensors, launch.n_blocks, launch.counter, launch.series, lr_value, lr_tensor,
            *scalars, **constants,
        )
