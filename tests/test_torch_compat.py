"""The package on every torch it supports: the floor, the private torch names in one place, every option trains.

``make torch-versions`` runs these (with the other optimizer tests) in fresh environments with the oldest supported
torch and a later one, so that a private name that moves in a torch release is caught here.
"""

from __future__ import annotations

import ast
import math
import pathlib
import re
import subprocess
import sys

import pytest
import tomllib
import torch

import radam
from radam import _torch_compat

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = pathlib.Path(radam.__file__).resolve().parent


def test_the_floor_is_the_one_pyproject_states():
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (torch_requirement,) = [d for d in dependencies if re.match(r"torch\b", d)]
    assert torch_requirement == "torch>={}.{}".format(*_torch_compat.TORCH_FLOOR)
    assert _torch_compat.torch_version() >= _torch_compat.TORCH_FLOOR  # this torch is supported


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("2.8.0", (2, 8)),
        ("2.9.1+cu128", (2, 9)),
        ("2.13.0+cpu", (2, 13)),
        ("2.10.0a0+git1234", (2, 10)),
        ("3.0.0", (3, 0)),
    ],
)
def test_torch_version_reads_major_and_minor(version, expected):
    assert _torch_compat.torch_version(version) == expected


def test_a_version_string_without_a_version_is_refused():
    with pytest.raises(ValueError, match="cannot read a torch version"):
        _torch_compat.torch_version("nightly")


@pytest.mark.parametrize("version", ["2.3.1", "2.6.0", "2.7.1+cu126", "1.13.1"])
def test_an_older_torch_is_refused_naming_the_floor_and_the_version_found(version):
    floor = "{}.{}".format(*_torch_compat.TORCH_FLOOR)
    with pytest.raises(ImportError, match=rf"radam needs torch >= {re.escape(floor)}, but torch {re.escape(version)}"):
        _torch_compat.check_torch_version(version)


@pytest.mark.parametrize("version", ["2.8.0", "2.9.1+cu128", "2.13.0", "3.1.0"])
def test_a_supported_torch_is_accepted(version):
    _torch_compat.check_torch_version(version)


def test_import_radam_on_an_older_torch_raises_the_clear_error():
    """The check runs before any private torch name is imported, so its message is what an old torch shows."""
    code = "import torch; torch.__version__ = '2.6.0'; import radam"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "ImportError: radam needs torch >= 2.8, but torch 2.6.0 is installed" in result.stderr


def _private_torch_uses(path: pathlib.Path) -> list[str]:
    """Private torch names a module uses: ``from torch... import _x``, ``torch.a._x`` (not the ``torch._foreach_*``
    operations, which torch's optimizers call as ops) and ``Optimizer._x``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "torch":
            found += [f"from {node.module} import {a.name}" for a in node.names if a.name.startswith("_")]
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            name = ast.unparse(node)
            if isinstance(root, ast.Name) and root.id in {"torch", "Optimizer"}:
                if not re.fullmatch(r"torch\._foreach_\w+", name):
                    found.append(name)
    return found


def test_private_torch_names_are_used_only_in_the_compat_module():
    uses = {
        str(path.relative_to(PACKAGE)): _private_torch_uses(path)
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "_torch_compat.py"
    }
    assert {name: found for name, found in uses.items() if found} == {}
    assert _private_torch_uses(PACKAGE / "_torch_compat.py")  # the scan does see them where they are


def test_the_scan_finds_each_kind_of_private_name(tmp_path):
    module = tmp_path / "module.py"
    module.write_text(
        "import torch\nfrom torch.optim.optimizer import _to_scalar, Optimizer\n"
        "f = torch._disable_dynamo\ng = Optimizer._group_tensors_by_device_and_dtype\n"
        "torch._foreach_add_([], 1)\nh = torch.optim.Optimizer.__init__\n"
    )
    assert _private_torch_uses(module) == [
        "from torch.optim.optimizer import _to_scalar",
        "torch._disable_dynamo",
        "Optimizer._group_tensors_by_device_and_dtype",
    ]


class _Recorder:
    def __init__(self):
        self.calls = []

    def method(self, name):
        return lambda optimizer: self.calls.append((name, optimizer))


def test_the_graph_capture_check_runs_at_every_step(monkeypatch):
    """RAdam.step starts with torch's graph-capture check, under whichever name this torch gives it."""
    recorder = _Recorder()
    for name in ("_accelerator_graph_capture_health_check", "_cuda_graph_capture_health_check"):
        if hasattr(torch.optim.Optimizer, name):
            monkeypatch.setattr(torch.optim.Optimizer, name, recorder.method(name))
    p = torch.zeros(2, requires_grad=True)
    p.grad = torch.ones(2)
    optimizer = radam.RAdam([p])
    optimizer.step()
    optimizer.step()
    expected = (
        "_accelerator_graph_capture_health_check"
        if hasattr(torch.optim.Optimizer, "_accelerator_graph_capture_health_check")
        else "_cuda_graph_capture_health_check"
    )
    assert recorder.calls == [(expected, optimizer)] * 2


def test_the_graph_capture_check_falls_back_to_the_cuda_check_of_older_torch(monkeypatch):
    """torch before 2.11 has only ``_cuda_graph_capture_health_check``."""
    recorder = _Recorder()
    monkeypatch.delattr(torch.optim.Optimizer, "_accelerator_graph_capture_health_check", raising=False)
    monkeypatch.setattr(
        torch.optim.Optimizer, "_cuda_graph_capture_health_check", recorder.method("cuda"), raising=False
    )
    optimizer = radam.RAdam([torch.zeros(2, requires_grad=True)])
    _torch_compat.graph_capture_health_check(optimizer)
    assert recorder.calls == [("cuda", optimizer)]


# ---------------------------------------------------------------- every option trains, on any supported torch


def _least_squares(seed: int = 0, dtype: torch.dtype = torch.float64, leaf: bool = True):
    """A well-conditioned least-squares problem: its weights (zeros; with ``leaf=False`` a tensor computed from a
    leaf, which is what ``differentiable=True`` steps) and its loss."""
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(64, 8, generator=generator, dtype=dtype)
    target = features @ torch.randn(8, generator=generator, dtype=dtype)
    weights = torch.zeros(8, dtype=dtype, requires_grad=True)
    if not leaf:
        weights = weights * 1.0

    def loss() -> torch.Tensor:
        return ((features @ weights - target) ** 2).mean()

    return weights, loss


def _train(optimizer: torch.optim.Optimizer, weights: torch.Tensor, loss, sign: float = 1.0) -> tuple[float, float]:
    """300 steps on ``sign * loss``; the loss before and after."""
    first = float(loss().detach())
    for _ in range(300):
        (weights.grad,) = torch.autograd.grad(sign * loss(), weights)
        optimizer.step()
    last = float(loss().detach())
    assert math.isfinite(last), last
    return first, last


RADAM_OPTIONS = {
    "default": {},
    "foreach": dict(foreach=True),
    "capturable": dict(capturable=True),
    "capturable-foreach": dict(capturable=True, foreach=True),
    "differentiable": dict(differentiable=True),
    "maximize": dict(maximize=True),
    "l2-decay": dict(weight_decay=0.01),
    "decoupled-decay": dict(weight_decay=0.01, decoupled_weight_decay=True),
    "skip": dict(degenerate="skip"),
    "threshold-4": dict(threshold=4.0),
    "exact": dict(rectifier="exact"),
    "amsgrad": dict(amsgrad=True),
    "tensor-lr": dict(lr=torch.tensor(0.05)),
    "all-variants-foreach": dict(
        degenerate="skip",
        threshold=4.0,
        rectifier="exact",
        amsgrad=True,
        weight_decay=0.01,
        decoupled_weight_decay=True,
        foreach=True,
    ),
    "all-variants-capturable": dict(degenerate="skip", rectifier="exact", amsgrad=True, capturable=True),
}


@pytest.mark.parametrize("options", RADAM_OPTIONS.values(), ids=RADAM_OPTIONS.keys())
def test_radam_trains_with_every_option(options):
    weights, loss = _least_squares(leaf=not options.get("differentiable"))
    optimizer = radam.RAdam([weights], **{"lr": 0.05, **options})
    first, last = _train(optimizer, weights, loss, sign=-1.0 if options.get("maximize") else 1.0)
    assert last < 1e-2 * first, (first, last)  # maximising -loss minimises the loss


def test_radam_trains_named_parameters_in_two_groups():
    weights, loss = _least_squares()
    optimizer = radam.RAdam([{"params": [("weights", weights)]}], lr=0.05)
    bias = torch.ones((), dtype=torch.float64, requires_grad=True)
    optimizer.add_param_group({"params": [("bias", bias)], "lr": 0.03})
    first = float(loss().detach())
    for _ in range(300):
        optimizer.zero_grad()
        (loss() + bias**2).backward()
        optimizer.step()
    assert float(loss().detach()) < 1e-2 * first and abs(float(bias.detach())) < 0.1
    assert [group["param_names"] for group in optimizer.state_dict()["param_groups"]] == [["weights"], ["bias"]]


VARIANT_OPTIONS = {
    "adam2k": (radam.Adam2k, dict(freeze_steps=20)),
    "adam2k-since-unfreeze-decoupled": (
        radam.Adam2k,
        dict(freeze_steps=20, first_moment_correction="since_unfreeze", weight_decay=0.01, decoupled_weight_decay=True),
    ),
    "adam2k-maximize": (radam.Adam2k, dict(freeze_steps=20, maximize=True)),
    "adam-eps": (radam.AdamEps, {}),
    "adam-eps-foreach-decoupled-amsgrad": (
        radam.AdamEps,
        dict(foreach=True, weight_decay=0.01, decoupled_weight_decay=True, amsgrad=True),
    ),
    "adam-eps-maximize": (radam.AdamEps, dict(maximize=True)),
}


@pytest.mark.parametrize(("optimizer_class", "options"), VARIANT_OPTIONS.values(), ids=VARIANT_OPTIONS.keys())
def test_the_ablation_optimizers_train_with_every_option(optimizer_class, options):
    weights, loss = _least_squares()
    optimizer = optimizer_class([weights], lr=0.05, **options)
    first, last = _train(optimizer, weights, loss, sign=-1.0 if options.get("maximize") else 1.0)
    assert last < 1e-2 * first, (first, last)


def test_the_version_check_refuses_a_list_without_the_floor():
    """``make torch-versions`` must test the floor that pyproject.toml states (checked before anything is installed)."""
    script = ROOT / "tools" / "check_torch_versions.sh"
    result = subprocess.run(
        [str(script), "2.9.1"],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable},
    )
    assert result.returncode == 2
    assert "do not include pyproject.toml's floor, torch 2.8" in result.stderr
