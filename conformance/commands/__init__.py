"""The CLI glue (``gim-netpol``, ``python -m conformance``): may import every layer, and nothing imports it.

The subcommands of ``gim-netpol``: each module exposes ``register(subparsers)``, which adds its parser
and sets ``func(args) -> int`` on it. ``conformance.commands.cli.COMMANDS`` lists them."""

from __future__ import annotations

import sys
from collections.abc import Callable


def note(message: str) -> None:
    """A note for the user on stderr (stdout holds the command's output)."""
    print(f"gim-netpol: note: {message}", file=sys.stderr)


Note = Callable[[str], None]
