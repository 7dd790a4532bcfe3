"""The `imgai` command line: argparse only; every command calls one imgai function.

Each command group lives in its own module with `register(subparsers)`; the table below is
the whole list. Errors from imgai become one `error: …` line and exit code 1; usage errors 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import ImgaiError

# command group → module (each has `register(subparsers)`)
COMMAND_MODULES = [
    "imgai.cli.models",
    "imgai.cli.jobs",
    "imgai.cli.tag",
    "imgai.cli.doctor",
    "imgai.cli.hub",
    "imgai.cli.train",
    "imgai.cli.quantize",
]


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(prog="imgai", description="imgai: a model workshop for image AI")
    parser.add_argument("--version", action="version", version=f"imgai {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .. import words

    words.use(words.CLI)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ImgaiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
