"""Where a request goes: the endpoint on which it finishes first, given queues and capacity.

An async request cannot move once it is queued, so the router must not only follow capacity but also the
work already waiting. The scaling engine keeps, in `server_config`, the routing weights (each endpoint's
capacity units serving, or coming where nothing serves yet) and, once a minute, a *snapshot* of each
endpoint's queue together with the router's request counter at that moment (`RoutingHints`). Request
number `counter` is then the k-th request since the snapshot (k = counter - snapshot counter), and its
endpoint is a pure function of (weights, snapshot, k); every Lambda container computes the same answer
from the one DynamoDB read it already makes, so requests from all of them interleave as one balancer's.

With capacity (some weight > 0), think of endpoint i's queue as B_i requests ahead of the new ones and of
its weight e_i as its service rate. The j-th new request on i finishes at (B_i + j) / e_i. Requests are
handed out in order of finishing time (ties to the endpoint first in `servers` order) until the queues
are level, that is until every endpoint's finishing time reaches that of the most loaded one; from there on
the smooth weighted round-robin takes over, which keeps them level within one request. Queues that are
already level (every queue empty, say) give the round-robin at once. An endpoint whose capacity is still
on its way while others serve starts `ahead[i]` requests behind (the engine sets it to the target backlog
of that capacity): it gets requests once the serving endpoints are at least that loaded, so a short queue
is not sent to wait for instances that are still starting.

A backlog deeper than the endpoints with capacity can work through even at their caps (their `wake_up`
quotas, see below) overflows: the endpoints without capacity that may take some are filled up to their quotas
in `servers` order, then requests are spread in proportion to every endpoint's quota, so that when the fleet
scales to its caps all of its capacity works on the backlog (a batch piled on the one endpoint that happened to
serve would wait for that endpoint's cap alone).

With no capacity anywhere (a fleet at zero with nothing coming), requests queue where the fleet will wake:
the first endpoint that may wake (`wake_up[i] > 0`, in `servers` order) takes requests until its queue holds
what its whole cap can work through at the target backlog per unit (`wake_up[i]` requests), then the next
one, and so on; beyond every quota they are spread in proportion to the quotas. A trickle wakes one
endpoint; a batch is spread over as many endpoints as its size needs, so the capacity that wakes up can
work on all of it (a batch piled on one endpoint would wait for that endpoint's cap alone).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from fleetscaler.logic.wrr import pick, smooth_wrr_sequence

# A quota that never fills: an endpoint without a cap can take any queue.
UNBOUNDED_QUOTA = 10**12
# Requests since the snapshot beyond this are routed by the round-robin alone (a snapshot that old no
# longer describes the queues; the engine refreshes it every minute).
MAX_REQUESTS_SINCE_SNAPSHOT = 10**9
# A snapshot older than this no longer describes the queues (the schedule that refreshes it every minute is
# missing or failing): its queues are ignored, the weights and wake-up quotas still route.
SNAPSHOT_MAX_AGE_SECONDS = 5 * 60


@dataclass(frozen=True)
class RoutingHints:
    """The engine's snapshot of the queues, as stored in `server_config.routing`.

    `backlog[i]`: requests queued on endpoint i when the snapshot was taken; `counter`: the router's
    request_count at that moment; `at`: when (epoch seconds); `wake_up[i]`: how many requests endpoint i
    may hold while no capacity serves or comes anywhere (0: it does not wake; see the module docstring);
    `ahead[i]`: requests counted ahead of endpoint i's queue while its capacity is on its way.
    """

    backlog: tuple[int, ...]
    counter: int
    at: float
    wake_up: tuple[int, ...]
    ahead: tuple[int, ...]

    def to_item(self) -> dict[str, Any]:
        return {
            "backlog": list(self.backlog),
            "counter": self.counter,
            "at": self.at,
            "wake_up": list(self.wake_up),
            "ahead": list(self.ahead),
        }

    @property
    def queued(self) -> tuple[int, ...]:
        """What the router counts ahead of a new request on each endpoint."""
        return tuple(b + a for b, a in zip(self.backlog, self.ahead, strict=True))

    def fresh(self, now: float) -> bool:
        return now - self.at <= SNAPSHOT_MAX_AGE_SECONDS

    def as_of(self, now: float | None) -> RoutingHints:
        """These hints with the queues forgotten when the snapshot is too old to describe them."""
        if now is None or self.fresh(now):
            return self
        return replace(self, backlog=(0,) * len(self.backlog))


ROUTING_KEYS = ("backlog", "counter", "at", "wake_up", "ahead")


def _whole(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number) or number != int(number):
        return None
    return int(number)


def parse_routing_hints(raw: object, count: int) -> tuple[RoutingHints | None, list[str]]:
    """`server_config.routing` as RoutingHints, or None and the problems (each naming the field)."""
    if raw is None:
        return None, []
    if not isinstance(raw, Mapping):
        return None, ["routing: must be a map with backlog, counter, at and wake_up"]
    problems = [f"routing.{key}: unknown key (the engine writes {', '.join(ROUTING_KEYS)})" for key in raw
                if key not in ROUTING_KEYS]
    lists: dict[str, tuple[int, ...]] = {}
    for key in ("backlog", "wake_up", "ahead"):
        values = raw.get(key)
        if not isinstance(values, Sequence) or isinstance(values, str | bytes):
            problems.append(f"routing.{key}: must be a list of whole numbers >= 0, one per server")
            continue
        if len(values) != count:
            problems.append(f"routing.{key}: has {len(values)} entries but servers has {count}")
            continue
        numbers = [_whole(v) for v in values]
        bad = [i for i, v in enumerate(numbers) if v is None or v < 0]
        if bad:
            problems.append(f"routing.{key}[{bad[0]}]: must be a whole number >= 0, got {values[bad[0]]!r}")
            continue
        lists[key] = tuple(int(v or 0) for v in numbers)
    counter = _whole(raw.get("counter"))
    if counter is None or counter < 0:
        problems.append(f"routing.counter: must be a whole number >= 0, got {raw.get('counter')!r}")
    at = raw.get("at")
    try:
        at_value = float(at)  # type: ignore[arg-type]
        if not math.isfinite(at_value) or isinstance(at, bool):
            raise ValueError
    except (TypeError, ValueError):
        problems.append(f"routing.at: must be a time in epoch seconds, got {at!r}")
        at_value = 0.0
    if problems:
        return None, problems
    return RoutingHints(lists["backlog"], int(counter or 0), at_value, lists["wake_up"], lists["ahead"]), []


# --- leveling: requests in order of finishing time until the queues are level ------------------------


@dataclass(frozen=True)
class _Leveling:
    """The requests that level the queues: `slots[i]` of them go to endpoint i, `total` in all."""

    weights: tuple[int, ...]
    backlog: tuple[int, ...]
    slots: tuple[int, ...]
    scale: int  # lcm of the positive weights: finishing times (B_i + j) / e_i as integers (B_i + j) * scale / e_i

    @property
    def total(self) -> int:
        return sum(self.slots)

    def _count_at_most(self, value: int) -> int:
        count = 0
        for e, b, m in zip(self.weights, self.backlog, self.slots, strict=True):
            if m:
                count += min(m, max(0, value * e // self.scale - b))
        return count

    def value_of(self, k: int) -> int:
        """The finishing time (scaled) of the (k+1)-th leveling request, k < total."""
        low, high = 0, max((b + m) * self.scale // e for e, b, m in zip(self.weights, self.backlog, self.slots,
                                                                         strict=True) if m)
        while low < high:
            middle = (low + high) // 2
            if self._count_at_most(middle) >= k + 1:
                high = middle
            else:
                low = middle + 1
        return low

    def _tied(self, value: int) -> list[int]:
        """Endpoints with a leveling slot finishing exactly at `value`, in servers order."""
        tied = []
        for i, (e, b, m) in enumerate(zip(self.weights, self.backlog, self.slots, strict=True)):
            if m and (value * e) % self.scale == 0 and 1 <= value * e // self.scale - b <= m:
                tied.append(i)
        return tied

    def owner(self, k: int) -> int:
        value = self.value_of(k)
        before = self._count_at_most(value - 1)
        return self._tied(value)[k - before]

    def counts(self, k: int) -> list[int]:
        """How many of the first k leveling requests each endpoint gets (k <= total)."""
        if k <= 0:
            return [0] * len(self.weights)
        value = self.value_of(k - 1)
        counts = [
            min(m, max(0, (value - 1) * e // self.scale - b)) if m else 0
            for e, b, m in zip(self.weights, self.backlog, self.slots, strict=True)
        ]
        for i in self._tied(value)[: k - sum(counts)]:
            counts[i] += 1
        return counts


def _leveling(weights: Sequence[int], backlog: Sequence[int]) -> _Leveling:
    positive = [i for i, e in enumerate(weights) if e > 0]
    scale = math.lcm(*(weights[i] for i in positive))
    # The most loaded endpoint's finishing time, as the fraction top_b / top_e.
    top = max(positive, key=lambda i: (backlog[i] * scale // weights[i], -i))
    top_b, top_e = backlog[top], weights[top]
    slots = tuple(max(0, top_b * e // top_e - b) if e > 0 else 0 for e, b in zip(weights, backlog, strict=True))
    return _Leveling(tuple(weights), tuple(backlog), slots, scale)


# --- the choice ---------------------------------------------------------------------------------------


def _round_robin(weights: Sequence[int], counter: int) -> int:
    return pick(weights, counter)


@dataclass(frozen=True)
class _Phase:
    """A run of consecutive requests routed one way: `length` of them (None: all the rest)."""

    length: int | None
    pick: Callable[[int], int]
    counts: Callable[[int], list[int]]


def _round_robin_phase(weights: Sequence[int], length: int | None) -> _Phase:
    return _Phase(length, lambda k: _round_robin(weights, k), lambda m: _round_robin_counts(weights, m))


def _fill_phase(rooms: Sequence[int]) -> _Phase:
    """Endpoints filled one after the other, each up to its room."""

    def pick(k: int) -> int:
        for index, room in enumerate(rooms):
            if k < room:
                return index
            k -= room
        raise IndexError(k)

    def counts(m: int) -> list[int]:
        taken = []
        for room in rooms:
            taken.append(min(room, m))
            m -= taken[-1]
        return taken

    return _Phase(sum(rooms), pick, counts)


def _phases(weights: Sequence[int], hints: RoutingHints) -> list[_Phase]:
    """How the requests after the snapshot are routed, in order.

    With capacity: queues levelled by finishing time, then the round-robin on the weights, while the endpoints
    with weight have room below their quotas (`wake_up`: what their whole caps work through at the target).
    Beyond that, a backlog too deep for them even at their caps overflows: endpoints without weight that may take
    capacity are filled up to their quotas in servers order, then every request is spread in proportion to the
    quotas, so that when the fleet scales to its caps all of it works on the backlog. At zero only the overflow
    applies: that is how a fleet at zero wakes."""
    queued = hints.queued
    quotas = list(hints.wake_up)
    phases: list[_Phase] = []
    if any(weights):
        room = sum(max(0, q - b) for q, b, w in zip(quotas, queued, weights, strict=True) if w) if any(quotas) else None
        leveling = _leveling(weights, queued)
        level = leveling.total if room is None else min(leveling.total, room)
        phases.append(_Phase(level, leveling.owner, leveling.counts))
        phases.append(_round_robin_phase(weights, None if room is None else room - level))
        if room is None:
            return phases
    rooms = [max(0, q - b) if q and not w else 0 for q, b, w in zip(quotas, queued, weights, strict=True)]
    phases.append(_fill_phase(rooms))
    phases.append(_round_robin_phase(quotas if any(quotas) else weights, None))
    return phases


def _since_snapshot(counter: int, hints: RoutingHints | None) -> int | None:
    if hints is None:
        return None
    k = counter - hints.counter
    return k if 0 <= k < MAX_REQUESTS_SINCE_SNAPSHOT else None


def choose_endpoint(
    counter: int, weights: Sequence[int], hints: RoutingHints | None = None, now: float | None = None
) -> int | None:
    """The endpoint index for request number `counter`; None when no endpoint can take it (no weight and
    no endpoint that may wake). `weights` must already be 0 for endpoints that take no requests. With `now`,
    a snapshot older than SNAPSHOT_MAX_AGE_SECONDS has its queues ignored."""
    if any(w < 0 for w in weights):
        raise ValueError("weights must be >= 0")
    if hints is not None:
        hints = hints.as_of(now)
    usable = hints is not None and len(hints.backlog) == len(weights) == len(hints.wake_up)
    if not usable or hints is None:
        return _round_robin(weights, counter) if any(weights) else None
    if not any(weights) and not any(hints.wake_up):
        return None
    k = _since_snapshot(counter, hints)
    if k is None:
        return _round_robin(weights, counter) if any(weights) else _round_robin(hints.wake_up, counter)
    for phase in _phases(weights, hints):
        if phase.length is None or k < phase.length:
            return phase.pick(k)
        k -= phase.length
    raise AssertionError("the last phase takes every request")


def routed_counts(count: int, weights: Sequence[int], hints: RoutingHints) -> list[int]:
    """How many of the first `count` requests after the snapshot each endpoint got (what `choose_endpoint`
    gave them): the engine uses it to know what queued where since the last CloudWatch datapoint."""
    counts = [0] * len(weights)
    if count <= 0 or (not any(weights) and not any(hints.wake_up)):
        return counts
    for phase in _phases(weights, hints):
        taken = count if phase.length is None else min(count, phase.length)
        for i, extra in enumerate(phase.counts(taken)):
            counts[i] += extra
        count -= taken
        if count <= 0:
            break
    return counts


def _round_robin_counts(weights: Sequence[int], count: int) -> list[int]:
    """Picks per endpoint among the round-robin's first `count` (counters 0..count-1)."""
    period = smooth_wrr_sequence(weights)
    full, rest = divmod(count, len(period))
    counts = [0] * len(weights)
    for index in period:
        counts[index] += full
    for index in period[:rest]:
        counts[index] += 1
    return counts
