"""User errors: bad values, manifests, snapshots or options.

They are printed as one line (no traceback) and end the program with exit status 2,
before anything touches a cluster.
"""

from __future__ import annotations

EXIT_USAGE = 2


class UserError(Exception):
    """Bad input from the user. ``source`` is the file (or option), ``key`` the offending key path."""

    def __init__(self, message: str, *, source: str | None = None, key: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.source = source
        self.key = key

    def __str__(self) -> str:
        parts = [p for p in (self.source, self.key) if p]
        return ": ".join([*parts, self.message])

    def located(self, source: str) -> UserError:
        """The same error, naming ``source`` if it does not name a source yet."""
        if self.source is None:
            self.source = source
        return self
