"""One injectable clock for all of fleetscaler.

Production uses wall time. The local fleet and the simulator install a virtual clock so an hour of fleet
time runs in about a minute; every handler and logic path takes time from here, never from `time` directly.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that moves only when told to (tests, simulator)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go backwards")
        self._now += seconds

    def set(self, when: float) -> None:
        self._now = when


_clock: Clock = SystemClock()


def now() -> float:
    return _clock.now()


def now_ms() -> int:
    return int(_clock.now() * 1000)


def get_clock() -> Clock:
    return _clock


def set_clock(clock: Clock) -> Clock:
    """Install `clock`; returns the previous one so callers can restore it."""
    global _clock
    previous, _clock = _clock, clock
    return previous
