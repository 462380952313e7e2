"""How fast `submit` sends: additive increase, multiplicative decrease, and the router's Retry-After.

Pure: every method takes the time, so tests drive it with plain numbers.

- Sends are spaced `1 / rate` apart and never start before a pause ends.
- A throttling answer (429, 503 and the other overload answers) pauses every send for the answer's
  `Retry-After`, or for a doubling delay (0.5 s, 1 s, ... up to 30 s, jittered) when it has none, and halves
  the rate, at most once per burst: answers to requests sent before the last decrease were caused by the
  old rate and do not decrease it again.
- Each accepted request adds `increase_per_second / rate`, so a second of clean sending raises the rate
  by `increase_per_second` (a twentieth of the ceiling by default), up to the ceiling (`--rate`).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import random
from dataclasses import dataclass, field

DECREASE_FACTOR = 0.5
# From half the ceiling back to the ceiling in 10 s of clean sending.
INCREASE_SHARE_PER_SECOND = 1 / 20
MIN_RATE = 1.0
BACKOFF_FIRST_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0
# A Retry-After beyond this is treated as this: a batch should not stall for hours on one answer.
RETRY_AFTER_MAX_SECONDS = 300.0


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or HTTP-date, RFC 9110), capped; None if absent
    or unreadable."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return min(float(int(text)), RETRY_AFTER_MAX_SECONDS)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return min(max(0.0, when.timestamp() - now), RETRY_AFTER_MAX_SECONDS)


@dataclass
class RateController:
    ceiling: float
    increase_per_second: float = 0.0
    floor: float = MIN_RATE
    rng: random.Random = field(default_factory=random.Random)
    rate: float = field(init=False)
    lowest: float = field(init=False)
    paused_until: float = field(init=False, default=0.0)
    throttled: int = field(init=False, default=0)
    _next_slot: float | None = field(init=False, default=None)  # None until the first send
    _last_decrease_at: float = field(init=False, default=float("-inf"))
    _throttles_in_a_row: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if self.ceiling <= 0:
            raise ValueError("the ceiling rate must be > 0")
        self.floor = min(self.floor, self.ceiling)
        self.increase_per_second = self.increase_per_second or self.ceiling * INCREASE_SHARE_PER_SECOND
        self.rate = self.ceiling
        self.lowest = self.ceiling

    def ready_at(self) -> float:
        """When the next request may leave."""
        return max(self.paused_until, self._next_slot if self._next_slot is not None else float("-inf"))

    def take_slot(self, now: float) -> None:
        """A request leaves at `now` (>= ready_at()). A late sender catches up by at most one interval, and
        none after a pause: the first request after it is followed by the next one a whole interval later."""
        interval = 1.0 / self.rate
        if self._next_slot is None:
            self._next_slot = now + interval
        else:
            self._next_slot = max(self._next_slot, now - interval, self.paused_until) + interval

    def accepted(self) -> None:
        self._throttles_in_a_row = 0
        self.rate = min(self.ceiling, self.rate + self.increase_per_second / self.rate)

    def throttled_answer(self, sent_at: float, now: float, retry_after: float | None) -> float:
        """An overload answer, at `now`, to a request sent at `sent_at`; returns the pause it causes (seconds)."""
        self.throttled += 1
        self._throttles_in_a_row += 1
        if sent_at >= self._last_decrease_at:
            self.rate = max(self.floor, self.rate * DECREASE_FACTOR)
            self.lowest = min(self.lowest, self.rate)
            self._last_decrease_at = now
        if retry_after is None:
            backoff = min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * 2 ** (self._throttles_in_a_row - 1))
            # Jitter over the upper half: clients that backed off together do not all return together.
            retry_after = backoff * (0.5 + 0.5 * self.rng.random())
        self.paused_until = max(self.paused_until, now + retry_after)
        return retry_after
