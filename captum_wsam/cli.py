"""Command line of captum_wsam: ``captum-wsam demo`` trains small CNNs offline and writes an illustrated report."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

DESCRIPTION = "captum_wsam: style activation maps (SAM, WSAM), StyleAugment, LRP alpha-beta, parameter saliency and \
saliency-guided adversarial training for Captum, Kornia and torchattacks."

DEMO_DESCRIPTION = """\
Train a small CNN three ways (plain, with StyleAugment, with saliency-guided
adversarial training) on ShapesTextures images that the package draws itself
(no download), explain the models with every method of the package and write
report.md with its figures into the output folder.

One line is printed per stage and per training epoch. Trained models are cached
by their settings in ~/.cache/captum_wsam (or $XDG_CACHE_HOME/captum_wsam): a
second run with the same settings skips training. The output folder is replaced
as a whole at the end of a successful run; an interrupted run leaves it as it
was.
"""

DEMO_EPILOG = """\
examples:
  captum-wsam demo --quick             about a minute on two CPU cores
  captum-wsam demo --out my_report     the full run (a few minutes), report in my_report/report.md
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``captum-wsam`` (plain-text help)."""
    parser = argparse.ArgumentParser(prog="captum-wsam", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo", help="train small CNNs offline and write an illustrated report", description=DEMO_DESCRIPTION,
        epilog=DEMO_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--out", type=Path, default=Path("demo_out"), metavar="DIR",
                      help="output folder, created or replaced (default: demo_out)")
    demo.add_argument("--size", type=int, default=None, metavar="PIXELS",
                      help="image side, 32 to 224 (default: 32 with --quick, else 48)")
    demo.add_argument("--quick", action="store_true", help="a small run (under a minute on two CPU cores)")
    demo.add_argument("--seed", type=int, default=0, help="seed of data, weights and shuffling (default: 0)")
    demo.add_argument("--no-progress", action="store_true",
                      help="hide the progress bars (the stage lines are still printed)")
    demo.add_argument("--no-cache", action="store_true", help="neither read nor write the trained-model cache")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``captum-wsam`` console script; returns the exit status.

    Bad settings (a size outside 32..224, a negative seed, an output folder that cannot be used) end with a one-line
    message and status 2 before any work.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import DemoConfig, check_config, default_cache_dir, run_demo

        config = DemoConfig(out=args.out, size=args.size, quick=args.quick, seed=args.seed,
                            progress=not args.no_progress, cache_dir=None if args.no_cache else default_cache_dir())
        try:
            config = check_config(config)
        except (TypeError, ValueError) as error:
            parser.error(f"demo: {error}")
        result = run_demo(config)
        print(f"captum-wsam demo: report written to {config.out / 'report.md'}")
        for key, value in result.items():
            print(f"  {key}: {value:.4g}")
        sys.stdout.flush()
    return 0


__all__ = ["build_parser", "main"]
