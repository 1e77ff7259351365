"""The experiments end to end at the tiny size: every experiment runs, results validate, an interrupted run resumes
to identical metrics, corrupt result files are rejected with an error naming the file, and nothing uses the network."""

import json
import os
import re
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest
import torch

import radam.book
from radam._provenance import hardware_name
from radam.experiments import ResultsError, get_config, load_results, run_experiment, summarize
from radam.experiments.__main__ import main
from radam.experiments.optimizers import frozen_steps
from radam.experiments.results import SCHEMA, write_json_atomically

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to use the network")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _small(name, labels):
    config = get_config(name, "tiny")
    return config.replace(optimizers=tuple(s for s in config.optimizers if s.label in labels))


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("results")
    return {
        name: load_results(run_experiment(name, "tiny", output=folder / f"{name}.json", progress=False))
        for name in ("transformer-warmup", "gradient-histograms", "lr-robustness")
    }


def test_transformer_warmup_runs_every_optimizer(tiny_results):
    doc = tiny_results["transformer-warmup"]
    config = get_config("transformer-warmup", "tiny")
    assert doc["schema"] == SCHEMA and doc["config"] == config.to_dict()
    assert {r["optimizer"] for r in doc["runs"]} == {
        "adam",
        "adam-warmup-4u",
        "adam-warmup-2u",
        "adam-2k",
        "adam-eps",
        "adam-eps-torch",
        "radam",
        "radam-skip",
    }
    prov = doc["provenance"]
    assert prov["device"]["type"] == "cpu" and prov["device"]["name"] and prov["versions"]["torch"] == torch.__version__
    assert prov["seeds"] == list(config.seeds) and isinstance(prov["dirty"], bool)
    assert all(run["commit"] == prov["commit"] for run in doc["runs"])
    for run in doc["runs"]:
        m = run["metrics"]
        assert m["diverged_at"] is None and 2.0 < m["final_valid_loss"] < 7.0  # log(256) = 5.55 at the start
        assert m["log_steps"][-1] == config.steps and m["eval_steps"][-1] == config.steps
    adam2k = next(r for r in doc["runs"] if r["optimizer"] == "adam-2k")["metrics"]
    # Adam-2k's frozen steps (2/(1-beta2) = 4 at beta2 = 0.5) are numbered -3, ..., 0 and logged every 10 steps of
    # the 64; parameters do not move there, so its evaluation is at aligned steps 30 and 60 like everybody else's.
    assert config.optimizer("adam-2k").options["freeze_steps"] == 4
    assert adam2k["log_steps"] == [step - 4 for step in range(10, 61, 10)] + [60]
    assert adam2k["eval_steps"] == [30, 60]


def test_gradient_histograms_store_counts_not_tensors(tiny_results):
    doc = tiny_results["gradient-histograms"]
    config = get_config("gradient-histograms", "tiny")
    from radam.experiments.tasks import make_task

    n_params = sum(p.numel() for p in make_task(config, torch.device("cpu")).make_model().parameters())
    for run in doc["runs"]:
        hist = run["metrics"]["histograms"]
        assert hist["steps"] == list(config.histogram_steps)
        assert len(hist["edges"]) == config.histogram_bins + 1
        for counts, zeros in zip(hist["gradient"], hist["gradient_zeros"]):
            assert len(counts) == config.histogram_bins and sum(counts) + zeros == n_params
        for counts, zeros in zip(hist["update"], hist["update_zeros"]):
            assert sum(counts) + zeros == n_params
    by_label = {r["optimizer"]: r["metrics"]["histograms"] for r in doc["runs"]}
    # RAdam's first steps are SGD with momentum: every parameter with a gradient moves; Adam's do too. The biases of
    # the first LayerNorm... are not the point: the update histograms differ between Adam and RAdam at step 1.
    assert by_label["adam"]["update"][0] != by_label["radam"]["update"][0]
    assert len(json.dumps(doc)) < 200_000


def test_lr_robustness_grid(tiny_results):
    doc = tiny_results["lr-robustness"]
    rows = summarize(doc)
    assert len(rows) == 6 * 4 and {row["lr"] for row in rows} == {0.1, 0.03, 0.01, 0.003}
    for row in rows:
        assert row["metric"] == "final_test_accuracy" and row["n"] + row["diverged"] == 1
        assert row["mean"] is None or 0.0 <= row["mean"] <= 1.0


class _Killed(Exception):
    pass


def _interrupt_at(step_to_die):
    state = {"steps": 0}

    def callback(run_id, step):
        state["steps"] += 1
        if state["steps"] == step_to_die:
            raise _Killed(run_id)

    return callback


def _metrics(doc):
    return [(r["optimizer"], r["lr"], r["seed"], r["metrics"]) for r in doc["runs"]]


@pytest.mark.parametrize(
    "name, labels", [("transformer-warmup", ("adam", "adam-2k")), ("lr-robustness", ("sgd", "radam"))]
)
def test_resume_after_interruption_gives_identical_metrics(tmp_path, name, labels):
    config = _small(name, labels)
    reference = load_results(run_experiment(config, output=tmp_path / "reference.json", progress=False))
    output = tmp_path / "interrupted.json"
    # Die in the middle of the second run, between checkpoints (checkpoint_every = 10, die after step 15 of run 2).
    first_run_steps = config.steps + frozen_steps(config.optimizer(labels[0]))
    with pytest.raises(_Killed):
        run_experiment(config, output=output, progress=False, step_callback=_interrupt_at(first_run_steps + 15))
    folder = output.with_name(output.name + ".checkpoints")
    assert not output.exists() and len(list(folder.glob("*.json"))) == 2  # config.json + the finished run
    assert len(list(folder.glob("*.pt"))) == 1
    resumed = load_results(run_experiment(config, output=output, progress=False))
    assert _metrics(resumed) == _metrics(reference)
    assert not folder.exists()


def test_resume_after_sigkill_of_a_subprocess(tmp_path):
    output = tmp_path / "killed.json"
    script = textwrap.dedent(f"""
        import os, signal, sys
        import torch
        torch.set_num_threads(1)
        from radam.experiments import get_config, run_experiment
        config = get_config("lr-robustness", "tiny")
        config = config.replace(optimizers=config.optimizers[:1], lrs=config.lrs[:2])
        def die(run_id, step):
            if run_id.endswith("lr0.03__seed0") and step == 3:
                os.kill(os.getpid(), signal.SIGKILL)
        run_experiment(config, output={str(output)!r}, progress=False, step_callback=die)
    """)
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr
    config = get_config("lr-robustness", "tiny")
    config = config.replace(optimizers=config.optimizers[:1], lrs=config.lrs[:2])
    resumed = load_results(run_experiment(config, output=output, progress=False))
    reference = load_results(run_experiment(config, output=tmp_path / "reference.json", progress=False))
    assert _metrics(resumed) == _metrics(reference)


def test_worker_processes_give_the_same_results_and_resume(tmp_path):
    """jobs=2: the runs are shared out to two processes; the metrics are those of one process, and a finished run
    found in the checkpoint folder is kept, not run again."""
    config = _small("lr-robustness", ("sgd", "radam"))
    reference = load_results(run_experiment(config, output=tmp_path / "reference.json", progress=False))
    output = tmp_path / "parallel.json"
    folder = output.with_name(output.name + ".checkpoints")
    folder.mkdir()
    marker = {"config": config.to_dict(), "hardware": hardware_name(torch.device("cpu"))}
    (folder / "config.json").write_text(json.dumps(marker))
    first = reference["runs"][0]
    planted = {**first, "metrics": {**first["metrics"], "final_test_accuracy": 0.123}}  # recognisable if kept
    (folder / f"{first['optimizer']}__lr{first['lr']:g}__seed{first['seed']}.json").write_text(json.dumps(planted))
    lines = []
    parallel = load_results(run_experiment(config, output=output, progress=False, jobs=2, log=lines.append))
    assert parallel["runs"][0]["metrics"]["final_test_accuracy"] == 0.123
    # one line per run finished now (the planted run is counted as done), numbered on from it
    total = len(config.run_keys())
    assert sorted(line.split(" ", 1)[0] for line in lines) == [f"{i}/{total}" for i in range(2, total + 1)]
    assert all(re.search(r"__seed\d+: \d+\.\d s, last test_accuracy \d", line) for line in lines)
    cores = os.cpu_count()
    device = parallel["provenance"]["device"]
    assert (device["torch_threads"], device["processes"], device["logical_cpus"]) == (max(1, cores // 2), 2, cores)
    per_process = max(1, cores // 2)
    threads = f"{per_process} thread{'s' if per_process > 1 else ''} in each of 2 processes, {cores} cores visible"
    assert threads in radam.book.provenance_line(parallel)
    assert _metrics(parallel)[1:] == _metrics(reference)[1:]
    assert not folder.exists()


def _children(pid):
    children = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid):
            children.append(int(status.parent.name))
    return children


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the process table from /proc (Linux)")
def test_workers_end_when_the_experiment_process_is_killed(tmp_path):
    """SIGKILL the process running an experiment with jobs=2 in the middle of its runs: its two workers end too
    (no orphan goes on training and writing checkpoints that a resumed experiment would write too)."""
    import signal
    import time

    output = tmp_path / "killed.json"
    script = textwrap.dedent(f"""
        from radam.experiments import get_config, run_experiment
        config = get_config("lr-robustness", "tiny").replace(steps=400, log_every=10, eval_every=400,
                                                                checkpoint_every=20)
        config = config.replace(optimizers=config.optimizers[:1], lrs=config.lrs[:2])
        run_experiment(config, output={str(output)!r}, progress=False, jobs=2)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin"})
    folder = output.with_name(output.name + ".checkpoints")
    deadline = time.monotonic() + 120
    while not list(folder.glob("*.pt")) and time.monotonic() < deadline:  # a run is under way in a worker
        time.sleep(0.2)
    workers = _children(proc.pid)
    assert len(workers) >= 2 and list(folder.glob("*.pt"))  # the resource tracker may be a child too
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 20
    while any(Path(f"/proc/{pid}").exists() for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    alive = [
        pid
        for pid in workers
        if Path(f"/proc/{pid}/status").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()
    ]
    assert alive == []


def test_a_script_without_a_main_guard_gets_a_clear_error(tmp_path):
    """A script that calls run_experiment(jobs=2) at top level: 'spawn' re-imports it in each worker, which dies;
    the error says why instead of a bare BrokenProcessPool."""
    script = tmp_path / "unguarded.py"
    script.write_text(
        textwrap.dedent(f"""
        from radam.experiments import get_config, run_experiment
        config = get_config("lr-robustness", "tiny")
        run_experiment(config.replace(optimizers=config.optimizers[:1]), output={str(tmp_path / "r.json")!r},
                       progress=False, jobs=2)
    """)
    )
    environment = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin"}
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode != 0 and "if __name__ == '__main__':" in proc.stderr, proc.stderr[-2000:]


def test_a_failing_run_in_a_worker_is_reported_naming_it(tmp_path):
    config = _small("lr-robustness", ("sgd",))
    broken = config.replace(optimizers=(config.optimizers[0].__class__("sgd", "sgd", {"nesterov_typo": True}),))
    with pytest.raises(RuntimeError, match=r"run sgd__lr[0-9.]+__seed0 failed in a worker process"):
        run_experiment(broken, output=tmp_path / "r.json", progress=False, jobs=2)
    with pytest.raises(ValueError, match="jobs must be a positive integer"):
        run_experiment(config, output=tmp_path / "r.json", progress=False, jobs=0)


def test_checkpoint_folder_of_another_config_is_refused(tmp_path):
    config = _small("lr-robustness", ("sgd",))
    output = tmp_path / "r.json"
    with pytest.raises(_Killed):
        run_experiment(config, output=output, progress=False, step_callback=_interrupt_at(3))
    with pytest.raises(RuntimeError, match="different configuration"):
        run_experiment(config.replace(steps=6), output=output, progress=False)


def test_checkpoint_folder_of_other_hardware_is_refused(tmp_path):
    """A result file names one device: runs begun on a GPU are not finished on a CPU (or on another GPU model)."""
    config = _small("lr-robustness", ("sgd",))
    output = tmp_path / "r.json"
    with pytest.raises(_Killed):
        run_experiment(config, output=output, progress=False, step_callback=_interrupt_at(3))
    marker = output.with_name(output.name + ".checkpoints") / "config.json"
    saved = json.loads(marker.read_text())
    assert saved["hardware"] == hardware_name(torch.device("cpu"))
    marker.write_text(json.dumps({**saved, "hardware": "cuda: NVIDIA H100 80GB HBM3"}))
    with pytest.raises(RuntimeError, match=r"computed on 'cuda: NVIDIA H100 80GB HBM3', not on 'cpu: "):
        run_experiment(config, output=output, progress=False)
    marker.write_text(json.dumps(saved["config"]))  # the marker format before the hardware was recorded
    assert load_results(run_experiment(config, output=output, progress=False))["config"] == config.to_dict()


def test_parts_run_separately_and_the_last_writes_the_result(tmp_path, capsys):
    config = _small("lr-robustness", ("sgd",)).replace(lrs=(0.1, 0.01))
    reference = load_results(run_experiment(config, output=tmp_path / "reference.json", progress=False))
    output = tmp_path / "parts.json"
    assert list(config.parts()) == ["lr0.1", "lr0.01"]
    assert run_experiment(config, output=output, progress=False, part="lr0.01") is None and not output.exists()
    lines = []
    assert run_experiment(config, output=output, progress=False, part="lr0.1", log=lines.append) == output
    assert [line.split(" ", 1)[0] for line in lines] == ["1/1"]
    assert _metrics(load_results(output)) == _metrics(reference)
    with pytest.raises(ValueError, match=r"no part 'lr0.5'; its parts are \['lr0.1', 'lr0.01'\]"):
        run_experiment(config, output=tmp_path / "x.json", progress=False, part="lr0.5")
    assert main(["parts", "lr-robustness", "--full"]) == 0
    assert capsys.readouterr().out.split() == ["lr0.1", "lr0.03", "lr0.01", "lr0.003"]
    with pytest.raises(SystemExit):
        main(["run", "lr-robustness", "--size", "tiny", "--part", "lr0.5", "--output", str(tmp_path / "y.json")])
    assert "its parts are lr0.1, lr0.03, lr0.01, lr0.003" in capsys.readouterr().err


def test_complete_result_file_is_not_recomputed(tmp_path):
    config = _small("lr-robustness", ("sgd",)).replace(lrs=(0.1,))
    output = run_experiment(config, output=tmp_path / "r.json", progress=False)
    before = output.read_text()
    calls = []
    run_experiment(config, output=output, progress=False, step_callback=lambda *a: calls.append(a))
    assert calls == [] and output.read_text() == before


@pytest.fixture
def valid_document(tiny_results):
    return json.loads(json.dumps(tiny_results["lr-robustness"]))


def _edited(change):
    """A corruption that applies ``change`` to a copy of the valid document."""

    def corrupt(text, doc):
        doc = json.loads(json.dumps(doc))
        change(doc)
        return json.dumps(doc)

    return corrupt


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda text, doc: text[: len(text) // 2], "not valid JSON"),
        (lambda text, doc: "", "not valid JSON"),
        (lambda text, doc: json.dumps({**doc, "schema": "radam.experiments/0"}), "schema"),
        (lambda text, doc: json.dumps({k: v for k, v in doc.items() if k != "provenance"}), "provenance"),
        (lambda text, doc: json.dumps({**doc, "runs": doc["runs"][1:]}), "do not match the config"),
        (lambda text, doc: json.dumps({**doc, "runs": [{**doc["runs"][0], "metrics": {}}] + doc["runs"][1:]}), "lacks"),
        (lambda text, doc: json.dumps([1, 2]), "JSON object"),
        (_edited(lambda doc: doc["config"]["optimizers"][0].pop("label")), "config.optimizers"),
        (_edited(lambda doc: doc["config"].update(optimizers=3)), "config.optimizers"),
        (_edited(lambda doc: doc["config"].update(seeds=["0"])), "config.seeds"),
        (_edited(lambda doc: doc["runs"].append(doc["runs"][0])), r"\(sgd, lr=0.1, seed=0\) appears twice"),
        (_edited(lambda doc: doc["runs"][0]["metrics"].update(final_test_accuracy="high")), "final_test_accuracy"),
        (_edited(lambda doc: doc["runs"][0]["metrics"].update(log_steps=10)), "log_steps"),
        (_edited(lambda doc: doc["runs"][0]["metrics"]["train_loss"].__setitem__(0, "nan")), "train_loss"),
        (_edited(lambda doc: doc["runs"][0]["metrics"].update(diverged_at="never")), "diverged_at"),
        (_edited(lambda doc: doc["runs"][0].update(seed=True)), "field 'seed'"),
        (_edited(lambda doc: doc["provenance"].pop("dirty")), "field 'provenance' lacks 'dirty'"),
        (_edited(lambda doc: doc["runs"][0]["metrics"]["log_steps"].pop()), "differ in length"),
    ],
)
def test_corrupt_result_files_are_rejected_naming_the_file(tmp_path, valid_document, corrupt, message):
    good = write_json_atomically(valid_document, tmp_path / "good.json")
    assert load_results(good)["experiment"] == "lr-robustness"
    bad = tmp_path / "bad.json"
    bad.write_text(corrupt(good.read_text(), valid_document))
    with pytest.raises(ResultsError, match=message) as info:
        load_results(bad)
    assert str(bad) in str(info.value)


def test_missing_result_file_is_a_clear_error(tmp_path):
    with pytest.raises(ResultsError, match="does not exist"):
        load_results(tmp_path / "nothing.json")
    with pytest.raises(ResultsError, match="cannot be read"):
        load_results(tmp_path)


def test_atomic_write_refuses_nan_and_leaves_no_partial_file(tmp_path):
    path = tmp_path / "x.json"
    write_json_atomically({"a": 1}, path)
    with pytest.raises(ValueError):
        write_json_atomically({"a": float("nan")}, path)
    assert json.loads(path.read_text()) == {"a": 1} and list(tmp_path.iterdir()) == [path]


def test_cli_list_run_show(tmp_path, capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "transformer-warmup" in out and "lr-robustness" in out and "gradient-histograms" in out
    output = tmp_path / "cli.json"
    assert (
        main(
            [
                "run",
                "gradient-histograms",
                "--size",
                "tiny",
                "--output",
                str(output),
                "--no-progress",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    runs = len(get_config("gradient-histograms", "tiny").run_keys())
    reported = [line for line in capsys.readouterr().out.splitlines() if re.match(r"\d+/\d+ ", line)]
    assert [line.split(" ", 1)[0] for line in reported] == [f"{i}/{runs}" for i in range(1, runs + 1)]
    assert "adam-2k__lr" in "".join(reported) and "last valid_loss" in reported[0]
    doc = load_results(output)
    assert doc["provenance"]["command"].startswith("python -m radam.experiments run gradient-histograms")
    assert main(["show", str(output)]) == 0
    assert "adam-2k" in capsys.readouterr().out
    output.write_text("{")
    assert main(["show", str(output)]) == 2
    assert str(output) in capsys.readouterr().err
    for option in ("--jobs", "--threads"):
        with pytest.raises(SystemExit) as info:
            main(["run", "lr-robustness", "--size", "tiny", option, "0"])
        assert info.value.code == 2 and f"{option}: 0 is less than 1" in capsys.readouterr().err


def test_sizes_are_consistent():
    for name in ("transformer-warmup", "gradient-histograms", "lr-robustness"):
        default, full = get_config(name, "default"), get_config(name, "full")
        assert [s.label for s in default.optimizers] == [s.label for s in full.optimizers]
        if name != "gradient-histograms":
            assert len(default.seeds) >= 5 and len(full.seeds) >= 5 and len(full.lrs) >= 3
    full = get_config("transformer-warmup", "full")
    assert full.model["width"] == 512 and full.model["layers"] == 6 and full.model["pre_ln"] is False
    assert get_config("lr-robustness", "full").lrs == (0.1, 0.03, 0.01, 0.003)
    with pytest.raises(KeyError, match="unknown experiment"):
        get_config("nope")


def test_a_diverged_run_reports_every_step_to_the_progress_bar():
    """A run that diverges stops early; the bar must still advance by the run's full length (it is sized by it)."""
    from radam.experiments.tasks import make_task
    from radam.experiments.training import train_run

    config = get_config("transformer-warmup", "tiny").replace(steps=20, log_every=2, checkpoint_every=2, eval_every=4)
    task = make_task(config, torch.device("cpu"))
    finite_loss, calls = task.loss, []

    def loss_that_turns_nan_at_step_5(model, batch):
        calls.append(1)
        out = finite_loss(model, batch)
        return out * float("nan") if len(calls) == 5 else out

    task.loss = loss_that_turns_nan_at_step_5
    advanced = []
    metrics = train_run(config, "adam", 1e-3, 0, task, torch.device("cpu"), progress=advanced.append)
    assert metrics["diverged_at"] == 6 and metrics["final_valid_loss"] is None and sum(advanced) == config.steps
