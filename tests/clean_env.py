"""Clean Python environments for the tests, made in seconds, and the release files of this checkout, built once.

A clean environment is a new virtual environment that holds a chosen set of distributions and everything they
depend on, at the versions pinned in requirements.txt, and nothing else: in particular not ``radam``, which a test
must install into it. Installing torch and Triton afresh would copy gigabytes and take minutes on the CI's two
cores, so their files are linked from this test run's own environment (the pinned ``.venv``) instead: each
distribution's top-level files and folders are symlinked into the new ``site-packages``. Python and pip see
ordinary installed distributions there; the environment's own files (``radam``, once installed) are real files.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from importlib.metadata import Distribution, PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent

#: What a Colab runtime has that the chapters use (Colab's own numpy, torch, jsonschema, ...), plus Jupyter's kernel
#: and pip
COLAB_LIKE = [
    "torch",
    "numpy",
    "scipy",
    "tqdm",
    "jsonschema",
    "matplotlib",
    "scikit-learn",
    "mpmath",
    "triton",
    "ipykernel",
    "pip",
]


def dependency_closure(names: list[str]) -> list[Distribution]:
    """The installed distributions ``names`` and everything they require (without extras), each once."""
    found: dict[str, Distribution] = {}
    pending = list(names)
    while pending:
        name = canonicalize_name(pending.pop())
        if name in found:
            continue
        try:
            found[name] = distribution(name)
        except PackageNotFoundError:
            raise RuntimeError(f"{name} is not installed in {sys.prefix}: run `make env`") from None
        for requirement in map(Requirement, found[name].requires or []):
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return list(found.values())


def linked_environment(folder: Path, names: list[str]) -> Path:
    """Make a virtual environment in ``folder`` holding ``names`` and their dependencies; return its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    python = folder / "bin" / "python"
    purelib = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    for dist in dependency_closure(names):
        for top in sorted({f.parts[0] for f in dist.files or []}):
            if top in ("..", "__pycache__"):
                continue
            source = Path(dist.locate_file(top))
            if source.exists() and not (purelib / top).exists():
                (purelib / top).symlink_to(source)
    return python


def python_sees(python: Path, module: str) -> bool:
    """Whether ``module`` imports in the environment of ``python`` (run from an empty folder)."""
    with tempfile.TemporaryDirectory() as empty:
        return subprocess.run([str(python), "-c", f"import {module}"], cwd=empty, capture_output=True).returncode == 0


@functools.cache
def built_dist() -> Path:
    """``python -m build`` of this checkout (sdist and wheel), as the release workflow makes them; built once."""
    out = Path(tempfile.mkdtemp(prefix="radam-dist-"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    result = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise RuntimeError(f"python -m build failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return out


def site_packages() -> Path:
    return Path(sysconfig.get_path("purelib"))
