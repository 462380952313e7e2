"""Smooth weighted round-robin driven by a global counter.

nginx's smooth WRR keeps a `current` value per server: each pick adds every weight to its server's
`current`, chooses the largest, and subtracts the total from the chosen one. Its picks are well spread,
but over some prefixes a server drifts slightly more than one request from its exact share (weights
1,1,1,3,3,3 reach 1.05). fleetscaler keeps nginx's `current` values and adds the quota rule of the
"chairman assignment" problem: a pick may only go to a server that stays within its upper quota
(count <= ceil(k * w / W)), and among those the one whose lower quota falls due first wins (earliest
deadline first), nginx's `current` breaking ties. The result is just as spread out, and after every
prefix of k requests each server's count is strictly within one request of k * w / W.

After W = sum(weights) picks every count equals its weight and every `current` is back to zero, so the
sequence is periodic. That lets many stateless Lambda containers share one atomic counter in DynamoDB:
counter value `c` maps to position `c mod W` of the one sequence, and requests from all containers
interleave exactly as a single balancer would send them.

A container builds the period once per weight set, one step per request of the period, so W is bounded
(MAX_PERIOD): weights adding up to more (after dividing by their gcd) are scaled down in proportion first,
each endpoint's share then within n / (MAX_PERIOD - n) of exact for n endpoints (see `period_weights`).
"""

from __future__ import annotations

import functools
import math
from array import array
from collections.abc import Sequence

# Longest period built: about 10 ms for 3 endpoints on a cold container. The scaling engine's own weights
# (serving capacity, at most 1,000 units) always fit, so they are followed exactly.
MAX_PERIOD = 10_000


def reduce_weights(weights: Sequence[int]) -> tuple[int, ...]:
    """Divide weights by their gcd: (10, 6, 4) routes exactly like (5, 3, 2) with a shorter period."""
    divisor = functools.reduce(math.gcd, weights, 0)
    if divisor <= 1:
        return tuple(weights)
    return tuple(w // divisor for w in weights)


def period_weights(weights: Sequence[int]) -> tuple[int, ...]:
    """The weights the sequence is built from: divided by their gcd and, when they still add up to more than
    MAX_PERIOD, scaled down to at most MAX_PERIOD.

    Scaling rounds each weight up (w' = ceil(w * T / W), T = MAX_PERIOD - n), so an endpoint with weight keeps
    at least 1 and the total stays within MAX_PERIOD; each share w'/W' is then within n / T of w / W (0.03
    percentage points for 3 endpoints). 500000,499999,1 becomes 4999,4999,1: the last endpoint gets one request
    in 9,999 instead of one in a million.
    """
    reduced = reduce_weights(weights)
    total = sum(reduced)
    if total <= MAX_PERIOD:
        return reduced
    target = MAX_PERIOD - len(reduced)
    return reduce_weights([-(-w * target // total) for w in reduced])


@functools.lru_cache(maxsize=32)
def _sequence(weights: tuple[int, ...]) -> array:
    total = sum(weights)
    active = [i for i, w in enumerate(weights) if w > 0]
    current = [0] * len(weights)
    counts = [0] * len(weights)
    picks = array("H")
    for k in range(1, total + 1):
        best = -1
        best_key: tuple[int, int] | None = None
        for i in active:
            current[i] += weights[i]
        for i in active:
            if counts[i] * total >= k * weights[i]:
                continue  # one more would put it above its upper quota
            deadline = -(-(counts[i] + 1) * total // weights[i])  # step by which it must get its next pick
            key = (deadline, -current[i])
            if best_key is None or key < best_key:
                best, best_key = i, key
        counts[best] += 1
        current[best] -= total
        picks.append(best)
    return picks


def smooth_wrr_sequence(weights: Sequence[int]) -> list[int]:
    """One full period of picks (indexes into `weights`)."""
    return list(_sequence(period_weights(weights)))


def _period(weights: Sequence[int]) -> array | None:
    """The cached period for `weights`, or None when every weight is 0."""
    if not weights:
        raise ValueError("no servers to pick from")
    if any(w < 0 for w in weights):
        raise ValueError("weights must be >= 0")
    bounded = period_weights(weights)
    return _sequence(bounded) if any(bounded) else None


def pick(weights: Sequence[int], counter: int) -> int:
    """Index of the server that serves the request numbered `counter`.

    Weight-0 servers are never chosen. When every weight is 0 (a fleet scaled to zero) the first server
    is chosen: requests wait in its async queue, and its HasBacklogWithoutCapacity metric wakes the fleet.
    """
    period = _period(weights)
    return 0 if period is None else period[counter % len(period)]


def pick_with_fallback(weights: Sequence[int], counter: int) -> tuple[int, int | None]:
    """`pick(weights, counter)` and the server to try when that one refuses the request: the next different
    server of the sequence after position `counter` (None when only one server has weight)."""
    period = _period(weights)
    if period is None:
        return 0, None
    position = counter % len(period)
    chosen = period[position]
    for step in range(1, len(period)):
        other = period[(position + step) % len(period)]
        if other != chosen:
            return chosen, other
    return chosen, None
