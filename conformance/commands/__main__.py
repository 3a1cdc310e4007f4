"""``python -m conformance.commands``: the ``gim-netpol`` command, as ``python -m conformance`` runs it."""

from conformance.commands.cli import main

raise SystemExit(main())
