"""tools/cpu_kernels.py, which the notebook tests use to run as older processors: each level holds torch and numpy."""

from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest
import torch

ROOT = pathlib.Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "cpu_kernels.py"
OWN = torch.backends.cpu.get_cpu_capability().lower()
PROBE = """
import threadpoolctl, torch
from numpy._core._multiarray_umath import __cpu_features__
blas = sorted({i["architecture"] for i in threadpoolctl.threadpool_info() if i["internal_api"] == "openblas"})
print(torch.backends.cpu.get_cpu_capability(), __cpu_features__.get("X86_V3"), __cpu_features__.get("X86_V4"), *blas)
"""


def run(*args: str) -> str:
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True, check=True).stdout


def test_lower_levels_are_the_ones_below_this_processor():
    expected = {"avx512": "default avx2", "avx2": "default", "default": ""}.get(OWN, "default")
    assert run("lower").strip() == expected


@pytest.mark.parametrize(
    ("level", "torch_kernels", "numpy_avx2", "blas"),
    [
        ("avx2", "AVX2", "True", "Haswell"),
        ("default", "DEFAULT", "False", "Nehalem"),
    ],
)
def test_a_level_holds_torch_numpy_and_openblas(level, torch_kernels, numpy_avx2, blas):
    if level not in run("lower").split():
        pytest.skip(f"this processor's own level is {OWN}")
    lines = run("run", level, "--", sys.executable, "-c", PROBE).splitlines()
    assert lines[0].startswith(f"as a processor at level {level}: ATEN_CPU_CAPABILITY='{level}'")
    assert lines[-1].split() == [torch_kernels, numpy_avx2, "False", blas]


def test_a_bad_level_is_refused_with_the_usage():
    result = subprocess.run([sys.executable, str(TOOL), "run", "avx1", "--", "true"], capture_output=True, text=True)
    assert result.returncode == 1 and "LEVEL is one of avx2, default" in result.stderr
