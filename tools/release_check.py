"""Checks a release's files before they are published: ``python -m tools.release_check dist --tag v0.1.0``.

The release workflow runs it after ``python -m build`` and ``twine check``:

1. the tag is ``v`` + ``radam.__version__`` (the one place the version is written), and ``dist/`` holds exactly one
   sdist and one wheel of that version;
2. the wheel holds the package and its data files (every file of ``radam/data`` that pyproject.toml ships), and
   nothing of the book, the tests or the tooling; its metadata declares pyproject.toml's dependencies;
3. the wheel installs into a new, empty virtual environment (its dependencies from the package index), where
   ``radam`` imports and one ``radam.RAdam`` step matches ``torch.optim.RAdam``'s.

Standard library only, so it runs on the bare Python of a CI runner.
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
import tempfile
import zipfile
from fnmatch import fnmatch
from pathlib import Path

import tomllib

__all__ = ["package_version", "check_tag", "check_dist", "smoke_test", "ReleaseError", "main"]

ROOT = Path(__file__).resolve().parent.parent

# Run in the new environment, from an empty folder (so the checkout's radam/ cannot be imported instead).
SMOKE_TEST = """
import torch, radam
assert radam.__version__ == {version!r}, radam.__version__
torch.manual_seed(0)
params = [torch.nn.Parameter(torch.randn(5)) for _ in range(2)]
twins = [torch.nn.Parameter(p.detach().clone()) for p in params]
before = [p.detach().clone() for p in params]
ours, theirs = radam.RAdam(params, lr=0.1), torch.optim.RAdam(twins, lr=0.1)
for group, optimizer in ((params, ours), (twins, theirs)):
    for p in group:
        p.grad = torch.arange(5.0) - 2
    optimizer.step()
for p, q in zip(params, twins):
    assert torch.equal(p, q), (p, q)
assert not any(torch.equal(p, b) for p, b in zip(params, before)), "the step changed nothing"
print("radam", radam.__version__, "from", radam.__file__, "with torch", torch.__version__, "takes a step: ok")
"""


class ReleaseError(Exception):
    """A release file, or the tag, is not what it must be; the message says what."""


def package_version(root: Path = ROOT) -> str:
    """``radam.__version__``, read from ``radam/__init__.py`` without importing the package."""
    tree = ast.parse((root / "radam" / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__version__" for t in node.targets):
            return ast.literal_eval(node.value)
    raise ReleaseError("radam/__init__.py does not assign __version__")


def check_tag(tag: str, version: str) -> None:
    if tag != f"v{version}":
        raise ReleaseError(
            f"the tag {tag!r} does not name the package's version {version} (radam/__init__.py): "
            f"tag v{version}, or change __version__ first"
        )


def check_dist(dist: Path, version: str, root: Path = ROOT) -> Path:
    """Check the sdist and wheel in ``dist``; return the wheel."""
    wheels = sorted(dist.glob("*.whl"))
    sdists = sorted(dist.glob("*.tar.gz"))
    if [w.name for w in wheels] != [f"radam-{version}-py3-none-any.whl"] or [s.name for s in sdists] != [
        f"radam-{version}.tar.gz"
    ]:
        raise ReleaseError(
            f"{dist} must hold radam-{version}.tar.gz and radam-{version}-py3-none-any.whl only, "
            f"not {[p.name for p in wheels + sdists]}"
        )
    wheel = wheels[0]
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(f"radam-{version}.dist-info/METADATA").decode()
    stray = sorted(n for n in names if not n.startswith(("radam/", f"radam-{version}.dist-info/")))
    if stray:
        raise ReleaseError(f"{wheel.name} holds files outside the package: {stray[:5]}")
    missing = sorted(f"radam/{p}" for p in _shipped_data(root) if f"radam/{p}" not in names)
    if missing or "radam/__init__.py" not in names:
        raise ReleaseError(f"{wheel.name} lacks package files: {missing[:5] or ['radam/__init__.py']}")
    declared = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    required = re.findall(r"^Requires-Dist: ([^;\n]+)$", metadata, re.M)
    if sorted(r.replace(" ", "") for r in required) != sorted(d.replace(" ", "") for d in declared):
        raise ReleaseError(f"{wheel.name} requires {required}, pyproject.toml declares {declared}")
    for field in ("Name: radam", f"Version: {version}", "Description-Content-Type: text/markdown"):
        if f"\n{field}\n" not in metadata:
            raise ReleaseError(f"{wheel.name}'s metadata lacks {field!r}")
    return wheel


def _shipped_data(root: Path) -> list[str]:
    """The files under radam/ that pyproject.toml's package-data patterns ship (paths relative to radam/)."""
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["radam"]
    package = root / "radam"
    files = [p.relative_to(package).as_posix() for p in package.rglob("*") if p.is_file()]
    return sorted(
        f for f in files if any(fnmatch(f, pattern) and f.count("/") == pattern.count("/") for pattern in patterns)
    )


def smoke_test(wheel: Path, version: str, python: str | None = None, pip_args: tuple[str, ...] = ()) -> str:
    """Install ``wheel`` into a new virtual environment (or into ``python``'s) and take one step; return its report."""
    with tempfile.TemporaryDirectory() as tmp:
        if python is None:
            subprocess.run([sys.executable, "-m", "venv", f"{tmp}/venv"], check=True)
            python = f"{tmp}/venv/bin/python"
        _run(
            [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *pip_args, str(wheel.resolve())],
            cwd=tmp,
        )
        return _run([python, "-c", SMOKE_TEST.format(version=version)], cwd=tmp).strip()


def _run(command: list[str], cwd: str) -> str:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise ReleaseError(f"{' '.join(command[:4])} ... failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return result.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.release_check", description=__doc__.splitlines()[0])
    parser.add_argument("dist", type=Path, help="the folder python -m build wrote")
    parser.add_argument("--tag", help="the release tag (GITHUB_REF_NAME); omitted: only the files are checked")
    parser.add_argument("--pip-arg", action="append", default=[], help="passed to pip install (an index, ...)")
    args = parser.parse_args(argv)
    try:
        version = package_version()
        if args.tag is not None:
            check_tag(args.tag, version)
        wheel = check_dist(args.dist, version)
        print(smoke_test(wheel, version, pip_args=tuple(args.pip_arg)))
    except ReleaseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
