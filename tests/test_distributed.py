"""radam.RAdam under DistributedDataParallel and FSDP2, two processes on this CPU, compared with one process.

One job starts two processes (``torch.multiprocessing``, the gloo backend on the loopback interface). Under DDP and
under FSDP2 (``fully_shard``: every parameter a DTensor, split by rows across the ranks) each trains, side by side,
one copy of a small model per option set of ``option_sets``: one param group per copy, with that set's options, in
one ``radam.RAdam``. It also saves and restores a checkpoint with torch's distributed checkpoint helpers, and records
the errors of what cannot work. The tests then compare what the ranks wrote with runs in this process. Parts of this
file are shown in the book (book/distributed.md), between ``[start NAME]`` and ``[end NAME]`` markers.

Why the comparisons are bit for bit. Each rank computes the gradient of its half of the batch, and the collective
averages them. With two ranks, (g0 + g1) / 2 and g0 / 2 + g1 / 2 are the same bits, however the backend orders it
(halving is exact, barring underflow, and the sum of two numbers has no order), so the single-process reference
computes both halves' gradients on the same shapes and forms g0 / 2 + g1 / 2: the very bits the ranks hold. The step
is element-wise, so updating a shard gives the bits of updating the whole tensor, whichever of the CPU kernel's code
paths (vectorised body, scalar tail) an element falls in. Where the reference is instead one backward pass over the
whole batch, the gradient's sums run in another order and only a tolerance can hold
(``test_full_batch_run_agrees_to_rounding``).
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

import radam
import radam.functional

if not (dist.is_available() and dist.is_gloo_available()):
    pytest.skip("needs torch.distributed with the gloo backend", allow_module_level=True)
try:
    from torch.distributed.fsdp import fully_shard
except ImportError:  # torch before 2.6 kept FSDP2 elsewhere
    pytest.skip("needs FSDP2 as torch.distributed.fsdp.fully_shard", allow_module_level=True)

import torch.distributed.checkpoint as dcp  # noqa: E402
from torch.distributed.checkpoint.state_dict import (  # noqa: E402
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.tensor import DTensor, Replicate, distribute_tensor  # noqa: E402
from torch.nn.parallel import DistributedDataParallel  # noqa: E402

WORLD_SIZE = 2  # the bit-for-bit argument above needs exactly two ranks
BATCH_PER_RANK = 4
STEPS = 10  # beta2 = 0.999: steps 1-5 are degenerate (1-4 with threshold 4), the rest rectified
SAVE_AFTER = 5  # the checkpoint is taken after the last degenerate step: the resumed run must turn adaptive
LR = 1e-2
JOB_TIMEOUT_S = 300  # a hung collective fails the tests instead of hanging them

TORCH_OPTIONS = {  # options torch.optim.RAdam has too: compared with a single-process torch.optim.RAdam
    "defaults": {},
    "l2-decay": {"weight_decay": 0.1},
    "decoupled-decay": {"weight_decay": 0.1, "decoupled_weight_decay": True},
}
VARIANT_OPTIONS = {  # options torch lacks: compared with a single-process radam.RAdam
    "skip": {"degenerate": "skip"},
    "threshold-4": {"threshold": 4.0},
    "exact-rectifier": {"rectifier": "exact"},
    "amsgrad": {"amsgrad": True},
    "paper": {"threshold": 4.0, "weight_decay": 0.1, "decoupled_weight_decay": True},
    "official-code": {"degenerate": "skip", "weight_decay": 0.1, "decoupled_weight_decay": True},
    "capturable": {"capturable": True},
}
FUSED_OPTIONS = {  # fused=True on each rank's local shards, in Triton's interpreter: compared with one process
    "fused": {"fused": True},
    "fused-variants": {
        "fused": True,
        "degenerate": "skip",
        "rectifier": "exact",
        "amsgrad": True,
        "weight_decay": 0.1,
        "decoupled_weight_decay": True,
    },
}
WRAPPERS = ("ddp", "fsdp2")


def option_sets(wrapper: str) -> dict[str, tuple[dict, torch.dtype]]:
    """Every option set one run trains side by side under ``wrapper``, by name: its options and dtype."""
    sets = {
        f"{name}-foreach-{foreach}": ({**options, "foreach": foreach}, torch.float32)
        for name, options in {**TORCH_OPTIONS, **VARIANT_OPTIONS}.items()
        for foreach in (False, True)
    }
    sets["float64"] = ({}, torch.float64)
    sets["broken"] = ({}, torch.float32)  # its last step is broken on purpose (train_side_by_side)
    if wrapper == "fsdp2":  # under DDP the parameters are plain tensors: the fused step's ordinary case
        sets.update({name: (options, torch.float32) for name, options in FUSED_OPTIONS.items()})
    return sets


class TinyRegressor(nn.Module):
    """Two linear layers and a gain, sized so that FSDP2's row shards are uneven (3 + 2 rows, 2 + 1 rows) and the
    gain's single row leaves rank 1 an empty shard."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(7, 5)
        self.out = nn.Linear(5, 3)
        self.gain = nn.Parameter(torch.ones(1))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.gain * self.out(torch.tanh(self.hidden(inputs)))


def make_model(dtype: torch.dtype = torch.float32, seed: int = 0) -> TinyRegressor:
    torch.manual_seed(seed)
    return TinyRegressor().to(dtype)


def batch(step: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Step ``step``'s batch, shaped ``(WORLD_SIZE, BATCH_PER_RANK, features)``: row ``r`` is rank ``r``'s half."""
    generator = torch.Generator().manual_seed(1000 + step)
    inputs = torch.randn(WORLD_SIZE, BATCH_PER_RANK, 7, generator=generator, dtype=torch.float64)
    noise = torch.randn(WORLD_SIZE, BATCH_PER_RANK, 3, generator=generator, dtype=torch.float64)
    return inputs.to(dtype), (torch.sin(2.0 * inputs[..., :3]) + 0.1 * noise).to(dtype)


@contextlib.contextmanager
def triton_interpreter(enabled: bool) -> Iterator[None]:
    """``TRITON_INTERPRET`` set (the fused kernel then runs on CPU tensors) or unset, for the duration."""
    before = os.environ.pop("TRITON_INTERPRET", None)
    if enabled:
        os.environ["TRITON_INTERPRET"] = "1"
    try:
        yield
    finally:
        os.environ.pop("TRITON_INTERPRET", None)
        if before is not None:
            os.environ["TRITON_INTERPRET"] = before


# ---------------------------------------------------------------- what each rank runs (the book shows these parts)


def shard_with_fsdp2(model: TinyRegressor) -> TinyRegressor:
    # [start fsdp2-wrap]
    for layer in (model.hidden, model.out):
        fully_shard(layer)  # each layer's parameters become DTensors, split by rows across the ranks
    fully_shard(model)  # the parameters left over (the gain), and the root that starts each forward pass
    # [end fsdp2-wrap]
    return model


def make_optimizer(model: nn.Module) -> radam.RAdam:
    # [start optimizer]
    optimizer = radam.RAdam(
        model.parameters(), lr=LR, degenerate="skip", weight_decay=0.1, decoupled_weight_decay=True, amsgrad=True
    )  # any options: each rank steps its shards
    # [end optimizer]
    return optimizer


def train(model: nn.Module, optimizer: torch.optim.Optimizer, rank: int, steps: range) -> None:
    for step in steps:
        inputs, targets = batch(step, torch.float32)
        inputs, targets = inputs[rank], targets[rank]  # this rank's half of the batch
        # [start training-step]
        loss = F.mse_loss(model(inputs), targets)
        loss.backward()  # DDP and FSDP2 average the gradients across the ranks here
        optimizer.step()  # each rank updates its parameters (FSDP2: its shards) and their optimizer state
        optimizer.zero_grad()
        # [end training-step]


def save_checkpoint(model: nn.Module, optimizer: torch.optim.Optimizer, path: Path) -> None:
    # [start checkpoint-save]
    state = {"model": get_model_state_dict(model), "optimizer": get_optimizer_state_dict(model, optimizer)}
    dcp.save(state, checkpoint_id=path)  # every rank writes its own shards
    # [end checkpoint-save]


def load_checkpoint(model: nn.Module, optimizer: torch.optim.Optimizer, path: Path) -> None:
    # [start checkpoint-load]
    state = {"model": get_model_state_dict(model), "optimizer": get_optimizer_state_dict(model, optimizer)}
    dcp.load(state, checkpoint_id=path)  # every rank reads the shards it holds, in place
    set_model_state_dict(model, state["model"])
    set_optimizer_state_dict(model, optimizer, state["optimizer"])
    # [end checkpoint-load]


def wrap(wrapper: str, model: TinyRegressor) -> nn.Module:
    if wrapper == "ddp":
        # [start ddp-wrap]
        model = DistributedDataParallel(model)  # every rank holds the whole model; backward() averages the gradients
        # [end ddp-wrap]
        return model
    return shard_with_fsdp2(model)


def full_params(model: nn.Module) -> dict[str, torch.Tensor]:
    """This rank's parameters by name, whole: DDP's replica, or FSDP2's shards gathered from every rank."""
    module = model.module if isinstance(model, DistributedDataParallel) else model
    return {
        name: (p.full_tensor() if isinstance(p, DTensor) else p).detach().clone()
        for name, p in module.named_parameters()
    }


def local_tensor(tensor: torch.Tensor) -> torch.Tensor:
    """What this rank stores of ``tensor``: its shard if it is a DTensor, else the tensor itself."""
    return tensor.to_local() if isinstance(tensor, DTensor) else tensor


class SideBySide(nn.Module):
    """One TinyRegressor per option set, all initialised alike, each given the batch in its own dtype."""

    def __init__(self, dtypes: dict[str, torch.dtype]) -> None:
        super().__init__()
        self.copies = nn.ModuleDict({name: make_model(dtype) for name, dtype in dtypes.items()})

    def forward(self, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: copy(inputs.to(copy.gain.dtype)) for name, copy in self.copies.items()}


def train_side_by_side(rank: int, wrapper: str) -> dict[str, dict[str, torch.Tensor]]:
    """Train every option set of ``option_sets(wrapper)`` for ``STEPS`` steps, each copy its own loss and its own
    param group; return each copy's parameters. The last step of the copy named "broken" is deliberately wrong on
    rank 1: one element of its first non-empty parameter (FSDP2: shard) moves one float32 ulp further."""
    sets = option_sets(wrapper)
    model = SideBySide({name: dtype for name, (_, dtype) in sets.items()})
    if wrapper == "fsdp2":
        fully_shard(model.copies["float64"])  # one FSDP2 unit per dtype: its parameters are gathered as one tensor
        fully_shard(model)
    else:
        model = DistributedDataParallel(model)
    copies = model.module.copies if wrapper == "ddp" else model.copies
    optimizer = radam.RAdam(
        [{"params": copies[name].parameters(), **options} for name, (options, _) in sets.items()], lr=LR
    )
    for step in range(STEPS):
        inputs, targets = batch(step, torch.float64)
        outputs = model(inputs[rank])
        torch.autograd.backward([F.mse_loss(out, targets[rank].to(out.dtype)) for out in outputs.values()])
        optimizer.step()
        optimizer.zero_grad()
    if rank == 1:
        with torch.no_grad():
            local = next(t for t in map(local_tensor, copies["broken"].parameters()) if t.numel())
            local.view(-1)[0] = torch.nextafter(local.view(-1)[0], torch.tensor(math.inf))
    return {name: full_params(copy) for name, copy in copies.items()}


def checkpoint_run(rank: int, wrapper: str, directory: Path) -> dict:
    """Train ``STEPS`` steps without a break, and again with a checkpoint after ``SAVE_AFTER`` steps restored into a
    new model (initialised from another seed) and a new optimizer; report both ends, and how the state was saved."""
    full = StateDictOptions(full_state_dict=True)  # gathered on every rank, to compare
    model = wrap(wrapper, make_model())
    optimizer = make_optimizer(model)
    train(model, optimizer, rank, range(STEPS))
    uninterrupted = (full_params(model), get_optimizer_state_dict(model, optimizer, options=full))

    model = wrap(wrapper, make_model())
    optimizer = make_optimizer(model)
    train(model, optimizer, rank, range(SAVE_AFTER))
    saved = {
        key: (type(value).__name__, tuple(local_tensor(value).shape))
        for key, value in get_optimizer_state_dict(model, optimizer)["state"]["hidden.weight"].items()
    }
    save_checkpoint(model, optimizer, directory)

    model = wrap(wrapper, make_model(seed=1))
    optimizer = make_optimizer(model)
    load_checkpoint(model, optimizer, directory)
    train(model, optimizer, rank, range(SAVE_AFTER, STEPS))
    resumed = (full_params(model), get_optimizer_state_dict(model, optimizer, options=full))
    return {"uninterrupted": uninterrupted, "resumed": resumed, "saved": saved}


def fused_errors() -> dict[str, str | bool]:
    """The messages of what cannot work with fused=True on FSDP2's DTensors, and whether a refused step left the
    parameters and the optimizer state as they were."""
    errors: dict[str, str | bool] = {}
    model = shard_with_fsdp2(make_model())
    with triton_interpreter(False):
        try:
            radam.RAdam(model.parameters(), fused=True)
        except RuntimeError as error:
            errors["cpu"] = str(error)

    with triton_interpreter(True):
        optimizer = radam.RAdam(model.parameters(), lr=LR, fused=True)
        for p in model.parameters():  # gradients laid out otherwise than their parameters: replicated, not sharded
            p.grad = distribute_tensor(torch.ones(p.shape), p.device_mesh, [Replicate()])
        before = full_params(model)
        try:
            optimizer.step()
        except RuntimeError as error:
            errors["placements"] = str(error)
        after = full_params(model)
        errors["untouched"] = not optimizer.state and all(torch.equal(before[k], after[k]) for k in before)

        params = list(model.parameters())
        zeros = [[torch.zeros_like(p) for p in params] for _ in range(2)]
        try:  # the functional step, given the DTensors themselves
            radam.functional.radam(
                params,
                [p.grad for p in params],
                *zeros,
                [torch.zeros(()) for _ in params],
                beta1=0.9,
                beta2=0.999,
                lr=LR,
                weight_decay=0.0,
                eps=1e-8,
                fused=True,
            )
        except RuntimeError as error:
            errors["functional"] = str(error)
    return errors


def run_rank(rank: int, port: int, out_dir: str) -> None:
    """What each spawned process runs: join the group, do every run, write this rank's results."""
    os.environ["GLOO_SOCKET_IFNAME"] = "lo"  # the loopback interface only
    torch.set_num_threads(1)
    store = dist.TCPStore("127.0.0.1", port, is_master=False, timeout=datetime.timedelta(seconds=60))
    dist.init_process_group(
        "gloo", store=store, rank=rank, world_size=WORLD_SIZE, timeout=datetime.timedelta(seconds=60)
    )
    try:
        results: dict = {}
        for wrapper in WRAPPERS:
            with triton_interpreter(wrapper == "fsdp2"):  # for the fused option sets
                results[wrapper] = train_side_by_side(rank, wrapper)
            results[f"{wrapper}-checkpoint"] = checkpoint_run(rank, wrapper, Path(out_dir) / f"checkpoint-{wrapper}")
        results["fused-errors"] = fused_errors()
        torch.save(results, Path(out_dir) / f"rank-{rank}.pt")
    finally:
        dist.destroy_process_group()


def launch(out_dir: Path) -> list[dict]:
    """Run ``run_rank`` in ``WORLD_SIZE`` spawned processes and return each rank's results.

    The ranks meet at a store served from this process, on a port the system picks (no race for a free port); they
    are killed if they have not finished after ``JOB_TIMEOUT_S``."""
    store = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)
    context = torch.multiprocessing.start_processes(
        run_rank, args=(store.port, str(out_dir)), nprocs=WORLD_SIZE, join=False, start_method="spawn"
    )
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while not context.join(timeout=1.0):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            raise TimeoutError(f"the {WORLD_SIZE} ranks did not finish in {JOB_TIMEOUT_S} s")
    return [torch.load(out_dir / f"rank-{rank}.pt", weights_only=False) for rank in range(WORLD_SIZE)]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> list[dict]:
    return launch(tmp_path_factory.mktemp("distributed"))


# ---------------------------------------------------------------- single-process references


@functools.cache
def reference(optimizer_name: str, set_name: str, dtype: torch.dtype = torch.float32, split: bool = True) -> dict:
    """The parameters after ``STEPS`` steps of ``torch.optim.RAdam`` or ``radam.RAdam`` in this process, with the
    options of ``set_name``, on the same batches.

    ``split``: the gradient is formed as the ranks' collective forms it, from both halves' gradients, each divided by
    the world size, then summed; otherwise by one backward pass over the whole batch."""
    optimizer_class = {"torch": torch.optim.RAdam, "radam": radam.RAdam}[optimizer_name]
    name, _, foreach = set_name.partition("-foreach-")
    options = {**TORCH_OPTIONS, **VARIANT_OPTIONS, **FUSED_OPTIONS}[name]
    if foreach:
        options = {**options, "foreach": foreach == "True"}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as on the ranks
    try:
        with triton_interpreter(bool(options.get("fused"))):
            model = make_model(dtype)
            optimizer = optimizer_class(model.parameters(), lr=LR, **options)
            for step in range(STEPS):
                inputs, targets = batch(step, dtype)
                if split:
                    halves = []
                    for rank in range(WORLD_SIZE):
                        F.mse_loss(model(inputs[rank]), targets[rank]).backward()
                        halves.append([p.grad / WORLD_SIZE for p in model.parameters()])
                        model.zero_grad()
                    for p, (first, second) in zip(model.parameters(), zip(*halves)):
                        p.grad = first + second
                else:
                    F.mse_loss(model(inputs.flatten(0, 1)), targets.flatten(0, 1)).backward()
                optimizer.step()
                optimizer.zero_grad()
    finally:
        torch.set_num_threads(threads)
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def differing_elements(results: dict, expected: dict) -> int:
    assert results.keys() == expected.keys()
    for name, value in results.items():
        assert value.dtype == expected[name].dtype and value.shape == expected[name].shape, name
    return sum(int((value != expected[name]).sum()) for name, value in results.items())


def assert_same_bits(results: dict, expected: dict, what: str) -> None:
    differ = differing_elements(results, expected)
    assert differ == 0, f"{what}: {differ} elements differ from the reference"


# ---------------------------------------------------------------- the tests


@pytest.mark.parametrize("wrapper", WRAPPERS)
@pytest.mark.parametrize("set_name", [f"{name}-foreach-{flag}" for name in TORCH_OPTIONS for flag in (False, True)])
def test_same_bits_as_single_process_torch_radam(ranks, wrapper, set_name):
    for rank, results in enumerate(ranks):
        assert_same_bits(results[wrapper][set_name], reference("torch", set_name), f"rank {rank}")


@pytest.mark.parametrize("wrapper", WRAPPERS)
@pytest.mark.parametrize("set_name", [f"{name}-foreach-{flag}" for name in VARIANT_OPTIONS for flag in (False, True)])
def test_variants_same_bits_as_single_process_radam(ranks, wrapper, set_name):
    for rank, results in enumerate(ranks):
        assert_same_bits(results[wrapper][set_name], reference("radam", set_name), f"rank {rank}")


def test_each_variant_changes_the_trajectory(ranks):
    """So that the comparisons above tell the option sets apart (capturable and fused take the default step by other
    means)."""
    runs = ranks[0]["fsdp2"]
    changed = [
        f"{name}-foreach-False" for name in [*TORCH_OPTIONS, *VARIANT_OPTIONS] if name not in ("defaults", "capturable")
    ] + ["fused-variants"]
    for name in changed:
        assert differing_elements(runs[name], runs["defaults-foreach-False"]) > 0, name


@pytest.mark.parametrize("set_name", list(FUSED_OPTIONS))
def test_fused_on_local_shards_same_bits_as_single_process_fused(ranks, set_name):
    for rank, results in enumerate(ranks):
        assert_same_bits(results["fsdp2"][set_name], reference("radam", set_name), f"rank {rank}")


@pytest.mark.parametrize("wrapper", WRAPPERS)
def test_full_batch_run_agrees_to_rounding(ranks, wrapper):
    """Against one backward pass over the whole batch, in float64, where the gradients' sums run in another order.

    The two runs' gradients differ by rounding, a relative delta of about 1e-16. A step, lr r_t m_hat / (sqrt(v_hat)
    + eps), is a ratio of moments, so it changes by about 2 delta of its size, a few lr at most (unless a gradient
    element is as small as its rounding error, which none is here); ten steps of lr = 1e-2, too few for the change to
    feed back through the loss, move the parameters apart by about 1e-16 (measured: 1.4e-17). The tolerance, 1e-13,
    leaves a factor 1000; the smallest change that an option set here makes after ten steps is 4e-4 (the exact
    rectifier), nine orders of magnitude more."""
    for rank, results in enumerate(ranks):
        assert_same_bits(results[wrapper]["float64"], reference("torch", "defaults", torch.float64), f"rank {rank}")
    expected = reference("torch", "defaults", torch.float64, split=False)
    for name, value in ranks[0][wrapper]["float64"].items():
        torch.testing.assert_close(value, expected[name], rtol=0.0, atol=1e-13)


@pytest.mark.parametrize("wrapper", WRAPPERS)
def test_a_step_off_by_one_ulp_on_one_rank_is_caught(ranks, wrapper):
    expected = reference("torch", "defaults")
    # DDP: only rank 1's replica is wrong; FSDP2: rank 0 gathered rank 1's wrong shard too
    assert differing_elements(ranks[0][wrapper]["broken"], expected) == (1 if wrapper == "fsdp2" else 0)
    assert differing_elements(ranks[1][wrapper]["broken"], expected) == 1
    with pytest.raises(AssertionError, match="1 elements differ"):
        assert_same_bits(ranks[1][wrapper]["broken"], expected, "rank 1")


@pytest.mark.parametrize("wrapper", WRAPPERS)
def test_checkpoint_restored_into_a_new_model_continues_bit_for_bit(ranks, wrapper):
    for rank, results in enumerate(ranks):
        run = results[f"{wrapper}-checkpoint"]
        (params, state), (resumed_params, resumed_state) = run["uninterrupted"], run["resumed"]
        assert_same_bits(resumed_params, params, f"rank {rank}: parameters")
        assert resumed_state["param_groups"] == state["param_groups"]
        assert state["param_groups"][0]["degenerate"] == "skip" and state["param_groups"][0]["amsgrad"] is True
        assert resumed_state["state"].keys() == state["state"].keys() == params.keys()
        for name, entries in state["state"].items():
            assert set(entries) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
            assert_same_bits(resumed_state["state"][name], entries, f"rank {rank}: state of {name}")
            assert float(entries["step"]) == STEPS


def test_fsdp2_checkpoint_holds_each_ranks_shard(ranks):
    """The sharded optimizer state dict holds DTensors; each rank's shard of the 5-row hidden layer has 3 or 2 rows."""
    for rank, rows in enumerate((3, 2)):
        saved = ranks[rank]["fsdp2-checkpoint"]["saved"]
        assert saved["step"][0] == "Tensor"
        for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
            assert saved[key] == ("DTensor", (rows, 7)), key


def test_fused_without_a_gpu_is_refused_at_construction_naming_the_way_out(ranks):
    message = ranks[0]["fused-errors"]["cpu"]
    assert "fused=True needs CUDA tensors" in message and "fused=False" in message


def test_fused_refuses_gradients_laid_out_otherwise_than_their_parameters(ranks):
    errors = ranks[0]["fused-errors"]
    assert "laid out as the parameter" in errors["placements"] and "fused=False" in errors["placements"]
    assert errors["untouched"] is True


def test_fused_functional_step_refuses_dtensors_naming_the_local_tensors(ranks):
    message = ranks[0]["fused-errors"]["functional"]
    assert "DTensor" in message and "to_local()" in message and "fused=False" in message
