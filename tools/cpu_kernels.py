"""Run a command as it would run on a processor with fewer vector instructions than this one.

Every numeric library in the book's environment picks its kernels for the processor it finds, and a kernel for
wider vectors may round differently. To show that nothing the notebook tests compare depends on the processor, the
tests run the notebooks again with each library held to the instructions of an older x86-64 processor:

=========  ==============================  =========================================================================
level      like a processor with           the libraries held there
=========  ==============================  =========================================================================
avx2       AVX2 but no AVX-512             torch's own kernels (``ATEN_CPU_CAPABILITY``), MKL, torch's BLAS
                                           (``MKL_CBWR``), oneDNN (``ONEDNN_MAX_CPU_ISA``), numpy's own loops
                                           (``NPY_DISABLE_CPU_FEATURES``), numpy's and scipy's OpenBLAS
                                           (``OPENBLAS_CORETYPE``)
default    SSE4.2 but no AVX2              the same, one level lower
=========  ==============================  =========================================================================

Usage::

    python tools/cpu_kernels.py lower            # the levels below this processor's, e.g. "default avx2"
    python tools/cpu_kernels.py run LEVEL -- COMMAND [ARG ...]
"""

from __future__ import annotations

import os
import sys

LEVELS = ("default", "avx2", "avx512")
"""torch's x86-64 kernel levels (``ATEN_CPU_CAPABILITY``), lowest first."""

ENVIRONMENT = {
    "avx2": {
        "ATEN_CPU_CAPABILITY": "avx2",
        "MKL_CBWR": "AVX2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "OPENBLAS_CORETYPE": "Haswell",
    },
    "default": {
        "ATEN_CPU_CAPABILITY": "default",
        "MKL_CBWR": "SSE4_2",
        "ONEDNN_MAX_CPU_ISA": "SSE41",
        "OPENBLAS_CORETYPE": "Nehalem",
    },
}
"""The environment of each level, but numpy's, which depends on its version (:func:`numpy_disabled`)."""

_SSE = {"SSE", "SSE2", "SSE3", "SSSE3", "SSE41", "POPCNT", "SSE42", "X86_V2"}


def numpy_disabled(level: str) -> str:
    """``NPY_DISABLE_CPU_FEATURES`` for a level: the targets of this numpy's own loops above it (numpy refuses to
    disable names it does not dispatch to, and names them differently across versions: X86_V3 and X86_V4 in 2.4)."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__ as targets
    except ImportError:  # numpy 1.x
        from numpy.core._multiarray_umath import __cpu_dispatch__ as targets
    if level == "avx2":
        return " ".join(t for t in targets if t.startswith("AVX512") or t == "X86_V4")
    return " ".join(t for t in targets if t not in _SSE)


def lower_levels() -> list[str]:
    """The levels below the one torch picks on this processor; ``["default"]`` on a processor torch does not grade
    this way (the lowest level is then the only one known to differ)."""
    import torch

    own = torch.backends.cpu.get_cpu_capability().lower()
    return list(LEVELS[: LEVELS.index(own)]) if own in LEVELS else ["default"]


def main(argv: list[str]) -> None:
    if argv[:1] == ["lower"] and len(argv) == 1:
        print(*lower_levels())
        return
    if len(argv) >= 4 and argv[0] == "run" and argv[1] in ENVIRONMENT and argv[2] == "--":
        level, command = argv[1], argv[3:]
        settings = {**ENVIRONMENT[level], "NPY_DISABLE_CPU_FEATURES": numpy_disabled(level)}
        print(f"as a processor at level {level}: " + " ".join(f"{k}={v!r}" for k, v in settings.items()), flush=True)
        environment = {**os.environ, **settings}
        os.execvpe(command[0], command, environment)
    sys.exit(__doc__.split("Usage::")[1] + f"\nLEVEL is one of {', '.join(ENVIRONMENT)}")


if __name__ == "__main__":
    main(sys.argv[1:])
