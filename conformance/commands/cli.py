"""The ``gim-netpol`` command: one subcommand per module of COMMANDS, each with ``register(subparsers)``."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys

from conformance.backends.base import BackendUnavailable
from conformance.errors import EXIT_USAGE, UserError

PROG = "gim-netpol"
EXIT_INTERRUPTED = 130

COMMANDS = (
    "conformance.commands.render",
    "conformance.commands.simulate",
    "conformance.commands.plan",
    "conformance.commands.verify",
    "conformance.commands.cleanup",
    "conformance.commands.rbac",
)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of ``command`` alone when a module of COMMANDS is named after it.

    Importing one command's module rather than all of them keeps other commands' imports (jsonschema,
    the kubernetes client) out of a `simulate` that has 3 seconds for 450,000 verdicts."""
    modules = [m for m in COMMANDS if m.rpartition(".")[2] == command] or COMMANDS
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Render and check the NetworkPolicies of GitGuardian self-hosted (GIM).",
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    for module in modules:
        importlib.import_module(module).register(subparsers)
    return parser


def error_line(message: object) -> str:
    """``gim-netpol: error: <message>`` on one line, however many lines the message had."""
    text = " ".join(str(message).split())
    return f"{PROG}: error: {text}"


def main(argv: list[str] | None = None) -> int:
    """Run ``gim-netpol``; returns the exit status (2 for bad input, 130 on Ctrl-C)."""
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv[0] if argv else None)
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) or a usage error (2): argparse has printed the message
        return e.code if isinstance(e.code, int) else EXIT_USAGE
    try:
        return args.func(args) or 0
    except (UserError, BackendUnavailable) as e:
        print(error_line(e), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`gim-netpol simulate ... | head`): not an error of ours. Point stdout
        # at /dev/null so the interpreter's final flush does not fail again.
        with contextlib.suppress(OSError, ValueError, AttributeError):  # stdout may not be a file
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
