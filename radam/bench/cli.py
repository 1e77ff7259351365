"""The command line, ``python -m radam.bench``: options, checks, the run, the table and the JSON file."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

import torch

import radam.bench
from radam._cli import non_negative_int, positive_int
from radam.bench.cases import CASES
from radam.bench.implementations import IMPLEMENTATIONS
from radam.bench.report import format_table
from radam.bench.runner import HOST_ONLY_STEPS_PER_TURN, default_filename, run, write_json

__all__ = ["main"]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m radam.bench", description=radam.bench.__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], help="default: cuda where available, else cpu")
    parser.add_argument(
        "--host-only",
        action="store_true",
        help="time the fused step's host work on the CPU, its kernel launch replaced by a no-op",
    )
    parser.add_argument("--cases", help=f"comma-separated, from {', '.join(CASES)}")
    parser.add_argument("--impls", help=f"comma-separated, from {', '.join(IMPLEMENTATIONS)}")
    parser.add_argument(
        "--repeats",
        type=positive_int,
        help=f"rounds (default 50; 20 of {HOST_ONLY_STEPS_PER_TURN} steps each with --host-only)",
    )
    parser.add_argument("--warmup", type=non_negative_int, default=8)
    parser.add_argument("--threads", type=positive_int, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--copy-mib", type=positive_int, help="size of the bandwidth copy (default 1024 on GPU, 256 on CPU)"
    )
    parser.add_argument(
        "--fused-block-size", type=positive_int, help="elements per block of the fused kernel (a power of 2)"
    )
    parser.add_argument(
        "--fused-programs-per-sm", type=positive_int, help="programs per multiprocessor of the fused kernel"
    )
    parser.add_argument("--fused-num-warps", type=positive_int, help="warps per program of the fused kernel")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--out", type=Path, help="JSON file to write")
    output.add_argument("--out-dir", type=Path, help="folder for the JSON file (named after the device)")
    args = parser.parse_args(argv)
    if args.host_only and args.device == "cuda":
        parser.error("--host-only runs on the CPU; leave out --device cuda")
    device = "cpu" if args.host_only else args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    repeats = args.repeats or (20 if args.host_only else 50)
    for name in (args.cases or "").split(",") if args.cases else []:
        if name not in CASES:
            parser.error(f"unknown case {name!r}")
    impls_arg = args.impls.split(",") if args.impls else None
    for name in impls_arg or []:
        if name not in IMPLEMENTATIONS:
            parser.error(f"unknown implementation {name!r}")
    if device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: CUDA is not available")
    from radam import fused

    changes = {
        name: value
        for name, value in (
            ("block_size", args.fused_block_size),
            ("programs_per_sm", args.fused_programs_per_sm),
            ("num_warps", args.fused_num_warps),
        )
        if value
    }
    try:
        tuning = dataclasses.replace(fused.DEFAULT_TUNING, **changes)
    except ValueError as error:
        parser.error(f"--fused-{str(error).replace('_', '-')}")
    command = "python -m radam.bench " + " ".join(sys.argv[1:] if argv is None else argv)
    result = run(
        device,
        args.cases.split(",") if args.cases else None,
        impls_arg,
        repeats,
        args.warmup,
        args.threads,
        command=command.strip(),
        copy_mib=args.copy_mib,
        tuning=tuning,
        host_only=args.host_only,
    )
    print(format_table(result))
    if args.out or args.out_dir:
        path = args.out or args.out_dir / default_filename(result)
        write_json(result, path)
        print(f"\nwrote {path}")
    return result
