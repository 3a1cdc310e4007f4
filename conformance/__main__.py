"""``python -m conformance``: the ``gim-netpol`` command (see conformance.commands.cli)."""

from conformance.commands.cli import main

raise SystemExit(main())
