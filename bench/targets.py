"""The speed issue's targets (goals, not measurements) and how a median is judged against them; no I/O."""

from __future__ import annotations

from dataclasses import dataclass

# Medians of fewer pairs are shown but not judged.
MIN_PAIRS = 3
WORKER_RSS_LIMIT_MIB = 150.0


@dataclass(frozen=True)
class PeerTarget:
    """Ours / the peer's req/s: the goal, the floor it must never fall below, and the floor with Redis."""

    goal: float
    floor: float
    redis_floor: float | None = None

    def floor_for(self, redis: bool) -> float:
        """The floor that applies with or without REDIS_URL."""
        return self.redis_floor if redis and self.redis_floor is not None else self.floor


@dataclass(frozen=True)
class CeilingTarget:
    """Ours / one of our own ceilings (bench/ceiling.py) in the same pair: at least `goal`."""

    ceiling: str
    goal: float


BARE = "bare Flask view"
WRITE = "raw INSERT + COMMIT"
HIT = PeerTarget(goal=2.0, floor=1.5, redis_floor=1.2)
WRITES = PeerTarget(goal=1.5, floor=1.2)
DELETE = PeerTarget(goal=1.5, floor=1.5)
SIGN_IN = PeerTarget(goal=10.0, floor=10.0)
HIT_CEILING = CeilingTarget(BARE, 0.6)
WRITE_CEILING = CeilingTarget(WRITE, 0.6)


def mark(value: float | None, threshold: float, pairs: int, *, below: bool = False) -> str:
    """✓ met, ✗ missed, ? not judged (no value, or fewer than MIN_PAIRS pairs); `below`: must be under it."""
    if value is None or pairs < MIN_PAIRS:
        return "?"
    met = value < threshold if below else value >= threshold
    return "✓" if met else "✗"


def rss_mark(peak_mib: float, limit_mib: float = WORKER_RSS_LIMIT_MIB) -> str:
    """✓ when a worker's peak resident memory stayed under the limit."""
    return "✓" if peak_mib < limit_mib else "✗"


# The scale run (issue 25): every workload at every number of active users, against the original.
SCALE = PeerTarget(goal=1.5, floor=1.0)
# Our listing's rate at 100 active users and at 1 within this fraction of each other.
FLATNESS = 0.8
SCALE_WORKER_RSS_LIMIT_MIB = 200.0


def flat_mark(ratio: float | None, pairs: int, within: float = FLATNESS) -> str:
    """✓ when one rate over another (`ratio`) is within `within` of it both ways: within ≤ ratio ≤ 1 / within."""
    if ratio is None or pairs < MIN_PAIRS:
        return "?"
    return "✓" if within <= ratio <= 1 / within else "✗"


def errors_mark(errors: int) -> str:
    """✓ when a server answered every request of every run with a 2xx (judged whatever the number of pairs)."""
    return "✓" if errors == 0 else "✗"
