"""``python -m conformance``: the ``gim-netpol`` command."""

from conformance.cli import main

raise SystemExit(main())
