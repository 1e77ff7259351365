"""Whether the fused step can run here, and on these tensors: Triton, the device, the dtypes, the layouts.

Every check runs before anything is launched, and each error names the tensor and what is wrong with it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from radam.step_scalars import check_dense_gradients

__all__ = ["STATE_DTYPES", "capturing", "check_fused_supported", "check_tensors", "interpreter_enabled", "is_dense"]

STATE_DTYPES = {
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


def check_fused_supported(params: Sequence[torch.Tensor]) -> None:
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
        if not isinstance(param, torch.Tensor):
            raise RuntimeError(f"fused=True: parameter {index} is a {type(param).__name__}, not a tensor")
        if param.dtype not in STATE_DTYPES:
            supported = ", ".join(str(dtype).removeprefix("torch.") for dtype in STATE_DTYPES)
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


def capturing(device: torch.device) -> bool:
    """Whether a CUDA graph is being recorded on ``device``'s current stream."""
    return device.type == "cuda" and torch.cuda.is_current_stream_capturing()


def is_dense(tensor: torch.Tensor) -> bool:
    """Whether the tensor's elements fill a block of memory without gaps or overlaps (any order of dimensions)."""
    if tensor.is_contiguous():
        return True
    expected = 1
    for stride, size in sorted((s, n) for s, n in zip(tensor.stride(), tensor.shape) if n != 1):
        if stride != expected:
            return False
        expected *= size
    return True


def check_tensors(lists: list[list[torch.Tensor]], amsgrad: bool) -> None:
    """``RuntimeError`` (``ValueError`` for lists of other lengths) naming the first tensor the kernel cannot step:
    ``lists`` are params, grads, exp_avgs, exp_avg_sqs, state_steps[, max_exp_avg_sqs]. Each parameter's gradient
    and state must have its shape, device and strides (dense), the state the dtype of the arithmetic
    (:data:`STATE_DTYPES`), the step a 1-element float32 or float64 tensor; no tensor may be a wrapper (a DTensor)."""
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
    for i in range(n):
        param, grad, exp_avg, exp_avg_sq, step = (lst[i] for lst in lists[:5])
        state_dtype = STATE_DTYPES[param.dtype]
        if grad.dtype != param.dtype or grad.shape != param.shape:
            raise RuntimeError(
                f"fused_radam: grad {i} is {grad.dtype} {tuple(grad.shape)}, its parameter is "
                f"{param.dtype} {tuple(param.shape)}"
            )
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
            if not is_dense(tensor) or tensor.stride() != param.stride():
                raise RuntimeError(
                    f"fused_radam: parameter {i}, its gradient and its state must be dense tensors with the same "
                    f"strides (got strides {param.stride()} and {tensor.stride()})"
                )
