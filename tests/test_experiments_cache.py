"""The cached results shipped in radam/data/: valid, produced by the current configuration, honest about their device,
and reproducible: one cached run recomputed on this CPU lands on the cached number."""

import re
import subprocess
from pathlib import Path

import pytest
import torch

from radam.experiments import EXPERIMENTS, get_config, load_results
from radam.experiments.results import cache_path
from radam.experiments.tasks import make_task
from radam.experiments.training import train_run

DATA = Path(cache_path("lr-robustness")).parent
CACHED = sorted(DATA.glob("*.json"))
ROOT = Path(__file__).resolve().parent.parent


def test_every_experiment_has_a_cached_default_result():
    assert {p.stem for p in CACHED if not p.stem.endswith("-full")} == set(EXPERIMENTS)


@pytest.mark.parametrize("path", CACHED, ids=lambda p: p.name)
def test_cached_result_is_valid_and_matches_the_current_config(path):
    doc = load_results(path)
    size = "full" if path.stem.endswith("-full") else "default"
    assert doc["size"] == size and path.stem.removesuffix("-full") == doc["experiment"]
    assert doc["config"] == get_config(doc["experiment"], size).to_dict(), (
        f"{path.name} was made with another configuration; regenerate it with "
        f"python -m radam.experiments run {doc['experiment']} --write-cache{' --full' if size == 'full' else ''}"
    )
    prov = doc["provenance"]
    legacy = doc["schema"] == "radam.experiments/1"  # the first format: the device as text, git_commit
    device = prov["device"] if legacy else f"{prov['device']['type']}: {prov['device']['name']}"
    if size == "default":
        assert device.startswith("cpu"), f"{path.name}: the default-size cache must be a CPU run"
    else:
        assert device.startswith("cuda"), f"{path.name}: the full-size cache must be a GPU run"
    assert prov["command"].startswith(f"python -m radam.experiments run {doc['experiment']}")
    # The cache names the commit it was made at. The default-size caches of the first format were made from a tree
    # whose only uncommitted change was to the runner's progress lines (the commit after it), so a
    # "+uncommitted-changes" suffix is accepted for them, with the commit itself required to be in the history; the
    # current format records that case as "dirty": true, which is accepted on the same terms.
    commit = prov["git_commit"].removesuffix("+uncommitted-changes") if legacy else prov["commit"]
    assert commit is not None and re.fullmatch(r"[0-9a-f]{40}", commit), f"{path.name}: no commit in its provenance"
    if (ROOT / ".git").exists():
        known = subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", f"{commit}^{{commit}}"], capture_output=True)
        assert known.returncode == 0, f"{path.name} names commit {commit}, which is not in this repository"


def test_one_cached_run_is_reproduced_on_this_cpu():
    doc = load_results(cache_path("lr-robustness"))
    config = get_config("lr-robustness")
    stored = next(r["metrics"] for r in doc["runs"] if (r["optimizer"], r["lr"], r["seed"]) == ("radam", 0.1, 0))
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        live = train_run(config, "radam", 0.1, 0, make_task(config, torch.device("cpu")), torch.device("cpu"))
    finally:
        torch.set_num_threads(previous)
    # Same code, seed and thread count: identical on the machine that made the cache; another CPU may differ in the
    # last bits, which can flip a handful of the 450 test predictions.
    assert live["final_train_loss"] == pytest.approx(stored["final_train_loss"], rel=0.05)
    assert abs(live["final_test_accuracy"] - stored["final_test_accuracy"]) <= 0.02
