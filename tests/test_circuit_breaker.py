"""The circuit breaker that keeps a Redis outage from costing a timeout on every call."""

from __future__ import annotations

from cache.breaker import CircuitBreaker


class Clock:
    """A clock the test moves by hand (the breaker's injectable time source)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_closed_breaker_allows_every_call() -> None:
    breaker = CircuitBreaker(2.0, Clock())
    assert all(breaker.allows() for _ in range(5))
    assert not breaker.is_open


def test_a_failure_opens_it_for_one_cooldown_then_lets_one_probe_through() -> None:
    clock = Clock()
    breaker = CircuitBreaker(2.0, clock)
    breaker.failed()
    assert breaker.is_open
    assert not breaker.allows()
    clock.now += 1.9
    assert not breaker.allows()
    clock.now += 0.2
    assert breaker.allows()  # the probe
    assert not breaker.allows()  # everyone else waits for its outcome


def test_a_failed_probe_reopens_and_a_successful_one_closes() -> None:
    clock = Clock()
    breaker = CircuitBreaker(2.0, clock)
    breaker.failed()
    clock.now += 2.0
    assert breaker.allows()
    breaker.failed()
    clock.now += 1.0
    assert not breaker.allows()
    clock.now += 1.0
    assert breaker.allows()
    breaker.succeeded()
    assert not breaker.is_open
    assert breaker.allows() and breaker.allows()


def test_a_probe_slower_than_the_cooldown_is_not_joined_by_another() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1.0, clock, probe_timeout=4.0)
    breaker.failed()
    clock.now += 1.0
    assert breaker.allows()  # the probe, which may take up to 4 s
    clock.now += 3.9
    assert not breaker.allows()
    breaker.failed()  # the probe's answer: one more cool-down from now
    clock.now += 0.9
    assert not breaker.allows()
    clock.now += 0.1
    assert breaker.allows()


def test_a_probe_that_never_reports_back_is_replaced_after_its_timeout() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1.0, clock, probe_timeout=4.0)
    breaker.failed()
    clock.now += 1.0
    assert breaker.allows()
    clock.now += 4.0
    assert breaker.allows()
