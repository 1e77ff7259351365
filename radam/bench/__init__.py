r"""Step-time benchmarks of RAdam implementations: ``python -m radam.bench``.

One run measures, in one process on one device, the time of one optimizer step of several implementations over
the same parameter lists, and the device's copy bandwidth, which gives each list its floor:

.. math:: T_{\text{floor}} = \frac{28\ \text{bytes} \times N_{\text{params}}}{B_{\text{copy}}}, \qquad
          B_{\text{copy}} = \frac{2 \times \text{bytes copied}}{T_{\text{copy}}}

(an RAdam step reads :math:`\theta, g, m, v` and writes :math:`\theta, m, v`: seven float32 numbers per parameter;
a copy reads and writes each byte once). The lists:

* ``gpt2``: the 148 parameter tensors of GPT-2 small (124,439,808 parameters, the output layer tied to the
  embedding);
* ``small``: 2000 tensors of 4096 parameters (launch overhead dominates);
* ``large``: one tensor of :math:`2^{26}` parameters (bandwidth dominates);
* ``cpu10m``: a 10.5M-parameter Transformer-shaped list, the CPU benchmark.

The implementations (``--impls``): ``radam-fused`` / ``radam-foreach`` / ``radam-forloop`` / ``radam-default``
(``radam.RAdam`` with ``fused=True``, ``foreach=True``, ``foreach=False``, or no choice), ``torch-radam-foreach`` /
``torch-radam-forloop`` / ``torch-radam-default`` / ``torch-radam-compiled`` (``torch.optim.RAdam``, the last with
its ``step`` under ``torch.compile``), ``torch-adam-fused`` (``torch.optim.Adam(fused=True)``, the fastest step torch
ships for a close relative), and, on CUDA, ``radam-fused-call`` (the fused kernel called directly on lists built
once, i.e. without the optimizer's per-step Python bookkeeping) and ``radam-fused-graph`` (that call captured in a
CUDA graph and replayed: device time alone).

Timing: every implementation steps its own optimizer state over the same parameters and gradients; after
``--warmup`` steps (which also pass the switch to adaptive steps at step 6) the implementations take turns, one
step each per round for ``--repeats`` rounds, so slow drifts of the machine hit them all alike. On a GPU a step is
timed with CUDA events after a synchronisation, so host overhead counts; on a CPU with ``time.perf_counter``. The
median is reported, with the 10th and 90th percentiles, and the median time until the call returned
(``host_median_ms``; on a GPU the host's share: when it equals the step time, Python, not the GPU, set the pace).
The JSON written (atomically) records, at its top level, the provenance of ``radam._provenance.record`` (command,
commit, dirty flag, date, device, versions).

The CPU mode (``--device cpu``) doubles as the check that ``radam.RAdam``'s default path is no slower than
``torch.optim.RAdam``'s on a 10M-parameter list: it prints the ratio of their medians, and the median of the
per-round ratios (the two steps of a round run back to back, so a busy machine slows both alike).

The host-only mode (``--host-only``) measures what the host does for a fused step, on any machine: the fused path
runs on CPU tensors with the kernel launch replaced by a call that does nothing (``radam.fused.Tuning.kernel``), so
the time of ``optimizer.step()`` is the time the host spends before a GPU could start the kernel, Triton's launcher
aside. Its implementations are ``radam-fused`` (the same gradient tensors at every step, as in the GPU benchmark),
``radam-fused-new-grads`` (new gradient tensors before every step, as ``zero_grad()`` and ``backward()`` leave them;
made outside the timed call) and ``radam-fused-call`` (:func:`radam.fused.fused_radam` on lists built once).

The package, one job per file: ``cases`` (the parameter lists), ``implementations`` (what is timed), ``timing`` (one
step, the copy bandwidth, the turns of one case), ``runner`` (a whole run and its JSON), ``report`` (the text table)
and ``cli`` (the command line).
"""

from radam.bench.cases import BYTES_PER_PARAM, CASES, cpu10m_shapes, gpt2_small_shapes
from radam.bench.cli import main
from radam.bench.implementations import HOST_ONLY_IMPLS, IMPLEMENTATIONS, NO_LAUNCH, _ignore  # noqa: F401
from radam.bench.report import format_table
from radam.bench.runner import HOST_ONLY_STEPS_PER_TURN, RATIOS, SCHEMA, default_filename, run, write_json
from radam.bench.timing import copy_bandwidth, run_case, time_step, time_step_and_host

__all__ = [
    "SCHEMA",
    "BYTES_PER_PARAM",
    "CASES",
    "IMPLEMENTATIONS",
    "HOST_ONLY_IMPLS",
    "HOST_ONLY_STEPS_PER_TURN",
    "RATIOS",
    "NO_LAUNCH",
    "gpt2_small_shapes",
    "cpu10m_shapes",
    "run",
    "run_case",
    "time_step",
    "time_step_and_host",
    "copy_bandwidth",
    "format_table",
    "default_filename",
    "write_json",
    "main",
]
