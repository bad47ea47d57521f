"""Readiness: is every dependency this process needs reachable, and in the state it needs, right now?"""

from __future__ import annotations

from collections.abc import Callable, Mapping

OK = "ok"
UNAVAILABLE = "unavailable"

Probe = Callable[[], bool | str]
"""A check: True (ok) or False (unavailable), or a status of its own such as "not migrated"."""


class Readiness:
    """Runs named probes in order and reports each one; ready when every one says "ok".

    A probe may require another (the schema check needs the database): when the required
    check did not pass, it is reported "unavailable" without running, so an unreachable
    database costs one probe's timeout, not two.
    """

    def __init__(self, probes: Mapping[str, Probe], requires: Mapping[str, str] | None = None) -> None:
        self._probes = dict(probes)
        self._requires = dict(requires or {})

    def checks(self) -> dict[str, str]:
        """`{"database": "ok" | "unavailable", "schema": "ok" | "not migrated" | ..., ...}`, one entry per probe."""
        results: dict[str, str] = {}
        for name, probe in self._probes.items():
            required = self._requires.get(name)
            if required is not None and results.get(required) != OK:
                results[name] = UNAVAILABLE
                continue
            result = probe()
            results[name] = result if isinstance(result, str) else OK if result else UNAVAILABLE
        return results

    @staticmethod
    def all_ok(checks: Mapping[str, str]) -> bool:
        """True when every check passed."""
        return all(result == OK for result in checks.values())
