"""radam.atomic: a file is replaced whole or not at all, and gets ordinary permissions."""

import json
import os
import stat

import pytest

from radam.atomic import atomic_open, write_json_atomically


def test_write_json_atomically_writes_and_replaces(tmp_path):
    path = tmp_path / "sub" / "result.json"
    write_json_atomically({"a": 1}, path)
    write_json_atomically({"a": 2}, path)
    assert json.loads(path.read_text()) == {"a": 2}
    assert os.listdir(path.parent) == ["result.json"]


def test_permissions_are_those_of_an_ordinary_file(tmp_path):
    umask = os.umask(0o022)
    try:
        write_json_atomically({"a": 1}, tmp_path / "r.json")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "r.json").stat().st_mode) == 0o644


def test_no_process_wide_state_is_touched(tmp_path, monkeypatch):
    """Toggling the umask to read it would give files created meanwhile by other threads the wrong permissions."""

    def forbidden(*args):
        raise AssertionError("os.umask changes the whole process")

    monkeypatch.setattr(os, "umask", forbidden)
    write_json_atomically({"a": 1}, tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text()) == {"a": 1}


def test_an_interrupted_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "r.json"
    write_json_atomically({"old": True}, path)
    with pytest.raises(RuntimeError, match="interrupted"):
        with atomic_open(path, "w") as file:
            file.write('{"new": ')
            raise RuntimeError("interrupted")
    assert json.loads(path.read_text()) == {"old": True}
    assert os.listdir(tmp_path) == ["r.json"]


def test_a_value_json_cannot_hold_writes_nothing(tmp_path):
    with pytest.raises(ValueError):
        write_json_atomically({"loss": float("nan")}, tmp_path / "r.json")
    assert os.listdir(tmp_path) == []


def test_only_whole_file_writes(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        with atomic_open(tmp_path / "r.txt", "a"):
            pass
