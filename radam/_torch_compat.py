r"""The private parts of ``torch.optim`` that the package uses, in one place, for every torch it supports.

``radam.RAdam`` is ``torch.optim.RAdam`` bit for bit with default options, so it takes its small helpers from torch
itself rather than copying them: the same helper gives the same arithmetic and the same behaviour under
``torch.compile``. Private names move between torch releases, so every one the package needs is imported here and
nowhere else, and ``make torch-versions`` (run by ``.ci/run``) tests the package in fresh environments with the
oldest supported torch and a later one.

=======================================  ====================================================================
name                                     in torch
=======================================  ====================================================================
``_default_to_fused_or_foreach``         every supported version
``_get_capturable_supported_devices``    from 2.4
``_get_scalar_dtype``                    every supported version
``_get_value``                           every supported version
``_to_scalar``                           from 2.8
``_use_grad_for_differentiable``         every supported version
``_view_as_real``                        every supported version
``_group_tensors_by_device_and_dtype``   ``Optimizer``'s static method, every supported version
``_disable_dynamo``                      ``torch._disable_dynamo``, every supported version
``Optimizer``'s graph-capture check      ``_accelerator_graph_capture_health_check`` from 2.11, before it
                                         ``_cuda_graph_capture_health_check`` (same job, CUDA only):
                                         :func:`graph_capture_health_check` calls whichever exists
=======================================  ====================================================================

``TORCH_FLOOR`` is the oldest torch the package supports (``pyproject.toml`` states the same); importing the
package with an older one raises an ``ImportError`` that names it.
"""

from __future__ import annotations

import re

import torch

__all__ = [
    "TORCH_FLOOR",
    "check_torch_version",
    "graph_capture_health_check",
    "torch_version",
    "_default_to_fused_or_foreach",
    "_disable_dynamo",
    "_get_capturable_supported_devices",
    "_get_scalar_dtype",
    "_get_value",
    "_group_tensors_by_device_and_dtype",
    "_to_scalar",
    "_use_grad_for_differentiable",
    "_view_as_real",
]

#: The oldest torch release the package is tested with and supports (keep equal to ``pyproject.toml``).
TORCH_FLOOR = (2, 8)


def torch_version(version: str | None = None) -> tuple[int, int]:
    """``(major, minor)`` of a torch version string (``torch.__version__`` by default): ``"2.9.1+cu128"`` -> (2, 9)."""
    text = torch.__version__ if version is None else version
    match = re.match(r"(\d+)\.(\d+)", str(text))
    if match is None:
        raise ValueError(f"cannot read a torch version from {text!r}")
    return int(match.group(1)), int(match.group(2))


def check_torch_version(version: str | None = None) -> None:
    """``ImportError`` naming the oldest supported torch if ``version`` (by default this torch's) is older."""
    if torch_version(version) < TORCH_FLOOR:
        found = torch.__version__ if version is None else version
        floor = ".".join(map(str, TORCH_FLOOR))
        raise ImportError(
            f"radam needs torch >= {floor}, but torch {found} is installed: upgrade it with "
            f"`pip install 'torch>={floor}'`"
        )


check_torch_version()

from torch.optim.optimizer import (  # noqa: E402  (after the version check, whose message is clearer)
    _default_to_fused_or_foreach,
    _get_capturable_supported_devices,
    _get_scalar_dtype,
    _get_value,
    _to_scalar,
    _use_grad_for_differentiable,
    _view_as_real,
)

_group_tensors_by_device_and_dtype = torch.optim.Optimizer._group_tensors_by_device_and_dtype
_disable_dynamo = torch._disable_dynamo


def graph_capture_health_check(optimizer: torch.optim.Optimizer) -> None:
    """torch's check at the start of ``step()``: ``RuntimeError`` when a CUDA (or XPU) graph is being captured and
    some param group is not ``capturable``, and a one-time warning when a capturable optimizer steps uncaptured.
    torch 2.11 renamed it from ``_cuda_graph_capture_health_check`` (which checks CUDA only) when it added XPU."""
    check = getattr(optimizer, "_accelerator_graph_capture_health_check", None)
    if check is None:
        check = optimizer._cuda_graph_capture_health_check
    check()
