"""How the fused step is cut into blocks and launched -- the speed, never the result.

:class:`radam.fused.Tuning` is an argument of everything that builds a plan (:func:`radam.fused.build_plan`,
:func:`radam.fused.fused_radam`, ``radam.RAdam``'s fused groups); :data:`DEFAULT_TUNING` is used
where none is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["BLOCK_SIZE", "DEFAULT_TUNING", "NUM_WARPS", "PROGRAMS_PER_SM", "STEP_BLOCK", "Tuning"]

BLOCK_SIZE = 1024
"""Elements per block, 28 KiB of float32 traffic. With 8 warps a thread holds 4 elements of each tensor (one 16-byte
access), which keeps registers low (64 for float32) and so many warps resident per multiprocessor."""
PROGRAMS_PER_SM = 8
"""Programs launched per GPU multiprocessor (at most one per block); each loops over its share of the blocks."""
NUM_WARPS = 8
"""Warps per program."""
STEP_BLOCK = 1024  # step counts advanced per iteration by the last program


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
