"""The book's training experiments: named, sized configurations, a resumable training loop, validated results.

Run from the command line (``python -m radam.experiments list|run|show``) or from Python::

    from radam.experiments import run_experiment, load_results, summarize
    path = run_experiment("lr-robustness")             # CPU size; size="full" for the GPU size
    print(summarize(load_results(path)))

One concept per module: :mod:`~radam.experiments.specs` (what a configuration is),
:mod:`~radam.experiments.configs` (what each named experiment runs),
:mod:`~radam.experiments.data` (datasets, offline by default), :mod:`~radam.experiments.models` (post-/pre-LN
Transformer, ResNet), :mod:`~radam.experiments.tasks` (batches, loss, evaluation),
:mod:`~radam.experiments.optimizers` (optimiser and schedule of a run), :mod:`~radam.experiments.training` (the
loop and its checkpoints), :mod:`~radam.experiments.runner` (all runs of an experiment),
:mod:`~radam.experiments.results` (result files and their JSON Schema), :mod:`~radam.experiments.summary` (means
over seeds, paired differences with intervals).
"""

from radam.experiments.configs import EXPERIMENTS, get_config
from radam.experiments.results import ResultsError, cache_path, load_cached, load_results
from radam.experiments.runner import run_experiment
from radam.experiments.specs import ExperimentConfig, OptimizerSpec
from radam.experiments.summary import paired_difference, summarize

__all__ = [
    "EXPERIMENTS",
    "ExperimentConfig",
    "OptimizerSpec",
    "get_config",
    "run_experiment",
    "load_results",
    "summarize",
    "paired_difference",
    "cache_path",
    "load_cached",
    "ResultsError",
]
