"""Command line: ``portone-recon <command>``; ``main(argv) -> int`` is the only entry point.

Exit codes: 0 clean, 1 findings or pending actions, 2 usage or expected error, 130 interrupted, 141 the
reader of the output went away (``... | head -1``; silent, as for any command killed by SIGPIPE).
Each area registers its own subcommands (``<area>/commands.py``: ``register(subparsers)``); every
handler takes the parsed arguments and returns an exit code. Only :class:`PortOneReconError` is turned
into a message here; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from portone_recon.errors import PortOneReconError

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141

#: Modules that register subcommands, in the order ``--help`` lists them.
COMMAND_MODULES = (
    "portone_recon.reports.commands",  # demo, report
    "portone_recon.sync.commands",  # sync
    "portone_recon.orders.commands",  # load-orders, load-subscriptions
    "portone_recon.reconcile.commands",  # reconcile
    "portone_recon.reconcile.triage_commands",  # ack, unack, findings
    "portone_recon.actions.commands",  # fix plan/apply, reverify, rebook
    "portone_recon.sandbox.commands",  # sandbox serve
)


class _Parser(argparse.ArgumentParser):
    """argparse exits with 2 on usage errors already; keep that, but never print the secret."""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="portone-recon",
        description="Reconcile PortOne V1 recurring payments with your orders, fix what broke, report it.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code) if isinstance(exc.code, int) else EXIT_ERROR
    try:
        code = int(args.func(args))
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's final flush
        return code
    except PortOneReconError as exc:
        print(f"portone-recon {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _discard_stdout()
        return EXIT_BROKEN_PIPE


def _discard_stdout() -> None:
    """Point stdout at /dev/null, so the output still buffered is not flushed into the closed pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real file descriptor (captured in a test or a notebook)
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
