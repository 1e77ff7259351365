"""A test run as a record: which tests ran where, and how each ended, as JSON with the run's provenance.

``make gpu-tests`` runs the CUDA tests through this module on a machine with a GPU::

    python -m tools.test_record run --out-dir radam/data/test-records -- tests/test_fused_cuda.py ...

which writes ``radam/data/test-records/cuda-nvidia-h200.json`` on an H200 (named like the benchmark's files).

pytest writes its JUnit XML report to a temporary file; the record keeps, per test, its node id, outcome
(``passed``, ``failed``, ``error``, ``skipped``) and, for a failure, the first line of its message, plus the counts
and the provenance of :mod:`radam._provenance` (commit, device, versions). The file is written atomically, so a run
that is stopped leaves the previous record in place.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from collections import Counter
from pathlib import Path
from typing import Any

SCHEMA = "radam.test-record/1"
OUTCOMES = ("passed", "failed", "error", "skipped")

__all__ = ["SCHEMA", "OUTCOMES", "parse_junit", "record", "check_record", "main"]


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""


def parse_junit(xml_text: str) -> list[dict[str, str]]:
    """Every test case of a JUnit XML report (pytest's ``--junitxml``): its node id (``file::name``), its outcome,
    and for a failure, an error or a skip the first line of the message."""
    root = ElementTree.fromstring(xml_text)
    tests = []
    for case in root.iter("testcase"):
        path = case.get("file") or case.get("classname", "").replace(".", "/") + ".py"
        node = {"id": f"{path}::{case.get('name')}", "outcome": "passed"}
        for outcome in ("failure", "error", "skipped"):
            found = case.find(outcome)
            if found is not None:
                node["outcome"] = {"failure": "failed"}.get(outcome, outcome)
                node["message"] = _first_line(found.get("message")) or _first_line(found.text)
                break
        tests.append(node)
    return tests


def record(tests: list[dict[str, str]], command: str, provenance: dict[str, Any]) -> dict[str, Any]:
    """The record of one pytest run: its provenance, and the run's command, counts per outcome and tests."""
    counts = Counter(test["outcome"] for test in tests)
    run = {
        "command": command,
        "stopped": None,
        "listed": "all",
        "counts": {outcome: counts.get(outcome, 0) for outcome in OUTCOMES},
        "tests": tests,
    }
    return {"schema": SCHEMA, "provenance": provenance, "runs": [run]}


def check_record(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` if it is a test record: a provenance and runs, each with a command, why it stopped early (None
    when it ran to the end), counts per outcome and the tests it names: all of them (``listed: "all"``), or, in a
    record taken from pytest's printed output, the failures it names (``"failures"``). ValueError naming what is
    wrong otherwise."""
    if document.get("schema") != SCHEMA:
        raise ValueError(f"not a test record: schema {document.get('schema')!r}, expected {SCHEMA!r}")
    for key in ("provenance", "runs"):
        if key not in document:
            raise ValueError(f"test record without {key!r}")
    for index, run in enumerate(document["runs"]):
        for key in ("command", "stopped", "listed", "counts", "tests"):
            if key not in run:
                raise ValueError(f"run {index} of the test record has no {key!r}")
        if set(run["counts"]) != set(OUTCOMES):
            raise ValueError(f"run {index}: counts {run['counts']} must have exactly the outcomes {OUTCOMES}")
        bad = [test for test in run["tests"] if test.get("outcome") not in OUTCOMES or "id" not in test]
        if bad:
            raise ValueError(f"run {index}: a test without an id or with an unknown outcome: {bad[0]}")
        named = Counter(test["outcome"] for test in run["tests"])
        if run["listed"] not in ("all", "failures"):
            raise ValueError(f"run {index}: listed must be 'all' or 'failures', not {run['listed']!r}")
        complete = run["listed"] == "all"
        for outcome in OUTCOMES:
            if named[outcome] > run["counts"][outcome] or (complete and named[outcome] != run["counts"][outcome]):
                raise ValueError(
                    f"run {index}: {named[outcome]} {outcome} tests named, {run['counts'][outcome]} "
                    f"counted" + ("" if complete else " (a run that lists its failures may name fewer, never more)")
                )
    return document


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.test_record", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run pytest and write its record")
    where = run.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", type=Path, help="the JSON record to write")
    where.add_argument("--out-dir", type=Path, help="write DEVICE.json there (cuda-nvidia-h200.json)")
    run.add_argument("pytest_args", nargs=argparse.REMAINDER, help="after --: the arguments for pytest")
    args = parser.parse_args(argv)

    import torch

    from radam import _provenance
    from radam.atomic import write_json_atomically
    from radam.bench.runner import default_filename

    pytest_args = [a for a in args.pytest_args if a != "--"] if args.pytest_args[:1] == ["--"] else args.pytest_args
    if not pytest_args:
        parser.error("give the tests to run after --")
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.xml"
        returncode = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", f"--junitxml={report}", *pytest_args],
            check=False,
        ).returncode
        if not report.exists():
            print(f"pytest wrote no report (exit status {returncode}); no record written", file=sys.stderr)
            return returncode or 1
        tests = parse_junit(report.read_text(encoding="utf-8"))
    command = "python -m pytest " + shlex.join(pytest_args)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    document = record(tests, command, _provenance.record(command, device))
    out = args.out or args.out_dir / default_filename(document["provenance"])
    write_json_atomically(check_record(document), out)
    print(f"{out}: {document['runs'][0]['counts']}")
    return returncode


if __name__ == "__main__":
    sys.exit(main())
