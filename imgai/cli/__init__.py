"""The `imgai` command line: argparse only; every command calls one imgai function.

Each command group lives in its own module with `register(subparsers)`; the table below is
the whole list. Every command takes `--json`; every one that queues a job takes `--wait`.

Exit codes, the same for every command: 0 done; 1 the operation failed or a value is bad (one
`error: …` line naming it); 2 a usage error (argparse: unknown command or option, bad choice).
A reader that stops early (`| head`, `| grep -q`) ends the command quietly, with 0.
"""

from __future__ import annotations

import argparse
import importlib
import os
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
    "imgai.cli.library",
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
    argv = _words_behind_options(parser, list(sys.argv[1:] if argv is None else argv))
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        _unrecognized(parser, sys.argv[1:] if argv is None else argv, unknown)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()          # a closed pipe shows here, not as a traceback at exit
        return code
    except BrokenPipeError:
        return _reader_went_away()
    except ImgaiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _command_parser(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.ArgumentParser:
    """The (sub)command's own parser that `argv` reached, e.g. `imgai models show`'s."""
    return _command_at(parser, argv)[0]


def _command_at(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[argparse.ArgumentParser, int]:
    """The (sub)command's own parser that `argv` reached, and where its own arguments start."""
    start = 0
    while True:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        at = next((i for i, t in enumerate(argv[start:], start) if subs and t in subs[0].choices), None)
        if at is None:
            return parser, start
        parser, start = subs[0].choices[argv[at]], at + 1


def _words_behind_options(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """A command whose words may start with "-" (`set_defaults(dash_words=True)`: `imgai library
    search -cat`) gets its own options first and every other token behind `--`, so "-cat" is a
    word, not an unknown option. A token starting with "--" that is not one of its options stays
    an option (a misspelled `--limt` is said as one); after a `--` everything is a word."""
    command, start = _command_at(parser, argv)
    if not command.get_default("dash_words"):
        return argv
    options = {name: action for action in command._actions for name in action.option_strings}
    rest, front, words = argv[start:], [], []
    i = 0
    while i < len(rest):
        token = rest[i]
        if token == "--":
            words += rest[i + 1:]
            break
        action = options.get(token.split("=", 1)[0])
        if action is not None:
            front.append(token)
            if action.nargs != 0 and "=" not in token and i + 1 < len(rest):
                front.append(rest[i + 1])           # its value, whatever it looks like
                i += 1
        elif token.startswith("--"):
            front.append(token)
        else:
            words.append(token)
        i += 1
    return argv[:start] + front + (["--", *words] if words else [])


def _unrecognized(parser: argparse.ArgumentParser, argv: list[str], unknown: list[str]) -> None:
    """A usage error said by the command that was meant, with the option closest to a misspelled one
    (`--top_k` → `--top-k`). Exits 2, as argparse does."""
    import difflib

    command = _command_parser(parser, list(argv))
    known = [o for a in command._actions for o in a.option_strings]
    hints = []
    for word in unknown:
        option = word.split("=", 1)[0]
        close = difflib.get_close_matches(option, known, n=1, cutoff=0.6) if option.startswith("-") else []
        hints.append(f"{word} (did you mean {close[0]}?)" if close else word)
    command.error(f"unrecognized arguments: {' '.join(hints)}")


def _reader_went_away() -> int:
    """stdout (or stderr) is a pipe whose reader has stopped: say nothing more, and make sure the
    interpreter's last flush at exit cannot fail either (as the Python docs advise for SIGPIPE)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        try:
            os.dup2(devnull, stream.fileno())
        except (AttributeError, OSError, ValueError):   # not a real file (an in-process caller's capture)
            pass
    os.close(devnull)
    return 0
