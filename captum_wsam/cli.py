"""Command line: ``captum-wsam demo [--out DIR] [--size 64] [--quick] [--seed 0] [--no-progress]``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="captum-wsam", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="train on the embedded ShapesTextures data and write a report (offline)")
    demo.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder (default: demo_out)")
    demo.add_argument("--size", type=int, default=64, help="image side in pixels, 32..224 (default: 64)")
    demo.add_argument("--quick", action="store_true", help="a small run that takes seconds")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``captum-wsam`` console script."""
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from .demo import DemoConfig, run_demo

        config = DemoConfig(out=args.out, size=args.size, quick=args.quick, seed=args.seed,
                            progress=not args.no_progress)
        result = run_demo(config)
        print(f"captum-wsam demo: report written to {config.out / 'report.md'}")
        for key, value in result.items():
            print(f"  {key}: {value:.4g}")
    return 0


__all__ = ["build_parser", "main"]
