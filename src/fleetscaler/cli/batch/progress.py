"""A progress line on stderr: redrawn in place on a terminal, a plain line every few seconds otherwise (logs, CI)."""

from __future__ import annotations

import sys
from collections import deque
from typing import TextIO

from fleetscaler import clock

TERMINAL_REDRAW_SECONDS = 0.25
PLAIN_LINE_SECONDS = 10.0
RATE_WINDOW_SECONDS = 10.0
BAR_WIDTH = 24


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


class Progress:
    """`update(done, **counts)` as work completes; `close()` at the end. Silent when not `enabled`."""

    def __init__(self, label: str, total: int, *, enabled: bool, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = total
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.terminal = bool(getattr(self.stream, "isatty", lambda: False)())
        self._samples: deque[tuple[float, int]] = deque()
        self._last_drawn = float("-inf")
        self._line = ""

    def rate(self, now: float, done: int) -> float:
        """Completions per second over the last RATE_WINDOW_SECONDS."""
        self._samples.append((now, done))
        while len(self._samples) > 2 and now - self._samples[1][0] >= RATE_WINDOW_SECONDS:
            self._samples.popleft()
        first_time, first_done = self._samples[0]
        return (done - first_done) / (now - first_time) if now > first_time else 0.0

    def update(self, done: int, counts: dict[str, int], *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = clock.now()
        rate = self.rate(now, done)
        every = TERMINAL_REDRAW_SECONDS if self.terminal else PLAIN_LINE_SECONDS
        if not force and now - self._last_drawn < every:
            return
        self._last_drawn = now
        remaining = self.total - done
        eta = f"ETA {format_duration(remaining / rate)}" if rate > 0 and remaining > 0 else "ETA -"
        share = done / self.total if self.total else 1.0
        extras = "  ".join(f"{name} {value}" for name, value in counts.items() if value)
        parts = [self.label, f"{done}/{self.total} ({share:.0%})", f"{rate:.1f}/s", eta]
        if self.terminal:
            filled = round(share * BAR_WIDTH)
            parts.insert(1, "[" + "#" * filled + "-" * (BAR_WIDTH - filled) + "]")
        line = "  ".join([*parts, extras] if extras else parts)
        if self.terminal:
            padding = " " * max(0, len(self._line) - len(line))
            self.stream.write(f"\r{line}{padding}")
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self._line = line

    def close(self) -> None:
        if self.enabled and self.terminal and self._line:
            self.stream.write("\n")
            self.stream.flush()
