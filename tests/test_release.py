"""The release path: one version, the release files as the release workflow builds them, and the wheel installed
into a clean environment taking one optimizer step (tools/release_check.py, which the workflow runs)."""

import shutil
import sys
import zipfile
from pathlib import Path

import pytest
import tomllib

import radam

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from clean_env import built_dist, linked_environment, python_sees  # noqa: E402

from tools.book_index import site_url  # noqa: E402
from tools.book_tools import repository_url  # noqa: E402
from tools.release_check import ReleaseError, check_dist, check_tag, package_version, smoke_test  # noqa: E402

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_version_is_written_once():
    project = PYPROJECT["project"]
    assert "version" not in project and project["dynamic"] == ["version"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "radam.__version__"}
    assert package_version() == radam.__version__


def test_project_urls_follow_the_config():
    urls = PYPROJECT["project"]["urls"]
    assert urls == {"Documentation": site_url(repository_url()), "Source": repository_url()}


def test_the_tag_must_name_the_version():
    check_tag(f"v{radam.__version__}", radam.__version__)
    for tag in (radam.__version__, "v9.9.9", f"v{radam.__version__}rc1"):
        with pytest.raises(ReleaseError, match="does not name the package's version"):
            check_tag(tag, radam.__version__)


def test_the_release_files_hold_the_package_and_its_data_only():
    wheel = check_dist(built_dist(), radam.__version__)
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "radam/data/transformer-warmup.json" in names
    assert not [n for n in names if n.startswith(("tests/", "tools/", "notebooks/", "book/"))]


def test_check_dist_refuses_a_wheel_without_its_data(tmp_path):
    for path in built_dist().iterdir():
        shutil.copy(path, tmp_path)
    wheel = next(tmp_path.glob("*.whl"))
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(tmp_path / "stripped.whl", "w") as target:
        for item in source.infolist():
            if not item.filename.startswith("radam/data/"):
                target.writestr(item, source.read(item))
    (tmp_path / "stripped.whl").replace(wheel)
    with pytest.raises(ReleaseError, match="lacks package files: \\['radam/data/"):
        check_dist(tmp_path, radam.__version__)
    with pytest.raises(ReleaseError, match="must hold"):
        check_dist(tmp_path, "9.9.9")


def test_the_wheel_installs_into_a_clean_environment_and_takes_a_step(tmp_path):
    """The environment holds radam's declared dependencies and nothing else; pip may not reach an index, so a
    dependency missing from the wheel's metadata fails the install."""
    python = linked_environment(tmp_path / "env", ["torch", "numpy", "scipy", "tqdm", "jsonschema", "pip"])
    assert not python_sees(python, "radam") and not python_sees(python, "matplotlib")
    wheel = next(built_dist().glob("*.whl"))
    report = smoke_test(wheel, radam.__version__, python=str(python), pip_args=("--no-index",))
    assert report.endswith("takes a step: ok") and str(tmp_path / "env") in report
