"""Publish a folder as the content of a branch: ``python -m tools.publish_branch _build/colab --branch colab``.

The book workflow publishes the Colab editions this way (as d2l publishes its Colab notebooks), to the branch the
site's Colab buttons open. Each publication is one commit on top of the branch's last one, holding exactly the
folder's files; nothing is committed when they have not changed. The folder never has to be checked out: the commit
is built from it with a temporary index (``git --work-tree=FOLDER add``). Standard library only, so it runs on a
bare Python.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["publish", "main"]


def _git(repo: Path, *args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
    result = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def publish(folder: Path, branch: str, message: str, repo: Path = Path("."), remote: str = "origin") -> str | None:
    """Commit ``folder``'s files as the next state of ``branch`` on ``remote`` and push; return the new commit, or
    None when the branch already holds exactly these files."""
    folder = Path(folder).resolve()
    if not folder.is_dir() or not any(folder.iterdir()):
        raise FileNotFoundError(f"{folder} is missing or empty: nothing to publish (run `make colab` first)")
    with tempfile.TemporaryDirectory() as tmp:
        index = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        _git(repo, f"--work-tree={folder}", "add", "--all", "--force", ".", env=index)
        tree = _git(repo, "write-tree", env=index)
    parent = None
    if _git(repo, "ls-remote", "--exit-code", "--heads", remote, branch, check=False):
        _git(repo, "fetch", "--quiet", "--depth=1", remote, f"refs/heads/{branch}")
        parent = _git(repo, "rev-parse", "FETCH_HEAD")
        if _git(repo, "rev-parse", f"{parent}^{{tree}}") == tree:
            return None
    commit = _git(repo, "commit-tree", tree, *(["-p", parent] if parent else []), "-m", message)
    _git(repo, "push", "--quiet", remote, f"{commit}:refs/heads/{branch}")
    return commit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.publish_branch", description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--branch", required=True)
    parser.add_argument("--message", required=True, help="the commit message")
    parser.add_argument("--remote", default="origin")
    args = parser.parse_args(argv)
    try:
        commit = publish(args.folder, args.branch, args.message, remote=args.remote)
    except (RuntimeError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{args.branch} is unchanged" if commit is None else f"pushed {commit} to {args.branch}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
