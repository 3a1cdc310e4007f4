"""Clocks: the real one (live backends) and a virtual one (the model), behind base.Clock.

Every wait, retry and timing of the suite goes through ``backend.clock``: on a live cluster that is
the real monotonic clock; on the model, sleeping advances virtual time at once, so the model's figures
("held after", the session's simulated live time) are the seconds a live run would have spent.
"""

from __future__ import annotations

import threading
import time


class RealClock:
    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class VirtualClock:
    """Virtual seconds since the clock was made; ``sleep`` and ``advance`` move it forward at once, or,
    with ``pace``, after ``pace`` real seconds per virtual second (so that real durations keep the
    proportions of the virtual ones: what xdist sees when it hands out tests)."""

    def __init__(self, start: float = 0.0, pace: float = 0.0) -> None:
        self._now = start
        self.pace = pace
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._now

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        if seconds > 0:
            with self._lock:
                self._now += seconds
            if self.pace > 0:
                time.sleep(seconds * self.pace)

    def advance_to(self, instant: float) -> None:
        with self._lock:
            ahead = instant - self._now
            self._now = max(self._now, instant)
        if self.pace > 0 and ahead > 0:
            time.sleep(ahead * self.pace)
