"""Command line: ``python -m radam.experiments {list,run,show}``.

* ``list`` names the experiments, what each shows and how many runs each size has.
* ``parts NAME [--full]`` prints the names of the experiment's parts (one per learning rate), one per line.
* ``run NAME [--full]`` runs one experiment (``--full`` is the GPU size) and writes ``results/NAME-SIZE.json``;
  killed and started again, it resumes where it stopped; ``--jobs N`` shares the runs out to N processes;
  ``--part PART`` runs one part only (the result file is written when the last part is done).
  ``--write-cache`` writes the package's cached copy ``radam/data/NAME[-full].json`` instead, which the book's
  notebooks load.
* ``show FILE|NAME`` validates a result file (or the cached result of an experiment) and prints its provenance and
  a mean +- std table over seeds.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from radam import _provenance
from radam._cli import positive_int
from radam.experiments.configs import EXPERIMENTS, SIZES, describe, get_config
from radam.experiments.results import ResultsError, cache_path, load_results
from radam.experiments.runner import run_experiment
from radam.experiments.summary import summarize


def _format_table(document: dict) -> str:
    rows = summarize(document)
    if not rows:
        return "(no runs)"
    metric = rows[0]["metric"]
    lines = [f"{'optimizer':<16} {'lr':>8}  {metric + ' (mean +- std)':<34} {'n':>3} {'diverged':>8}"]
    for row in rows:
        value = "-" if row["mean"] is None else f"{row['mean']:.4g} +- {row['std']:.2g}"
        lines.append(f"{row['optimizer']:<16} {row['lr']:>8g}  {value:<34} {row['n']:>3} {row['diverged']:>8}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else ["radam.experiments", *argv])
    parser = argparse.ArgumentParser(prog="python -m radam.experiments", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list the experiments")
    parts = commands.add_parser("parts", help="the names of an experiment's parts, one per line")
    parts.add_argument("name", choices=sorted(EXPERIMENTS))
    parts_size = parts.add_mutually_exclusive_group()
    parts_size.add_argument("--full", action="store_true", help="the GPU-sized configuration")
    parts_size.add_argument("--size", choices=SIZES, default="default")
    run = commands.add_parser("run", help="run an experiment (resumes an interrupted one)")
    run.add_argument("name", choices=sorted(EXPERIMENTS))
    group = run.add_mutually_exclusive_group()
    group.add_argument("--full", action="store_true", help="the GPU-sized configuration")
    group.add_argument("--size", choices=SIZES, default="default", help="tiny (tests), default (CPU), full (GPU)")
    run.add_argument("--output", type=Path, help="result file (default: results/NAME-SIZE.json)")
    run.add_argument("--write-cache", action="store_true", help="write the package's cached copy in radam/data/")
    run.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    run.add_argument("--threads", type=positive_int, help="CPU threads for torch")
    run.add_argument("--jobs", type=positive_int, default=1, help="worker processes sharing the runs out (default 1)")
    run.add_argument("--data", choices=["stdlib", "shakespeare", "digits", "cifar10"], help="swap the dataset")
    run.add_argument("--data-root", type=Path, help="folder of the opt-in datasets")
    run.add_argument("--download", action="store_true", help="allow downloading an opt-in dataset")
    run.add_argument("--force", action="store_true", help="re-run even if a complete result file exists")
    run.add_argument("--no-progress", action="store_true", help="no progress bar: one line per finished run instead")
    run.add_argument("--part", help="run one part only (see the parts command); the result is written by the last")
    show = commands.add_parser("show", help="validate and summarise a result file")
    show.add_argument("target", help="a result file, or an experiment name for its cached result")
    show.add_argument("--full", action="store_true", help="with a name: the cached GPU-size result")
    args = parser.parse_args(argv[1:])

    if args.command == "list":
        for name in EXPERIMENTS:
            print(f"{name}\n    {describe(name)}")
        return 0
    if args.command == "parts":
        for part in get_config(args.name, "full" if args.full else args.size).parts():
            print(part)
        return 0
    if args.command == "run":
        size = "full" if args.full else args.size
        if args.threads is not None:
            import torch

            torch.set_num_threads(args.threads)
        output = cache_path(args.name, size) if args.write_cache else args.output
        if args.part is not None and args.part not in get_config(args.name, size).parts():
            parser.error(
                f"{args.name} has no part {args.part!r}; its parts are {', '.join(get_config(args.name, size).parts())}"
            )
        path = run_experiment(
            args.name,
            size,
            output=output,
            device=args.device,
            data_source=args.data,
            data_root=args.data_root,
            download=args.download,
            force=args.force,
            progress=not args.no_progress,
            argv=argv,
            jobs=args.jobs,
            log=(lambda line: print(line, flush=True)) if args.no_progress else None,
            part=args.part,
        )
        if path is None:
            print(f"part {args.part} done; the result file is written when every part of {args.name} is done")
            return 0
        print(f"results: {path}")
        print(_format_table(load_results(path)))
        return 0
    target = Path(args.target)
    if not target.exists() and args.target in EXPERIMENTS:
        target = cache_path(args.target, "full" if args.full else "default")
    try:
        document = load_results(target)
    except ResultsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    prov = document["provenance"]
    print(f"{document['experiment']} ({document['size']}): {len(document['runs'])} runs")
    print(f"  command: {prov['command']}")
    print(f"  {_provenance.summary(prov)}")
    print(_format_table(document))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
