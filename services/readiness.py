"""Readiness: is every dependency this process needs reachable right now?"""

from __future__ import annotations

from collections.abc import Callable, Mapping

OK = "ok"
UNAVAILABLE = "unavailable"


class Readiness:
    """Runs named probes (each answers True when its dependency is reachable) and reports each one."""

    def __init__(self, probes: Mapping[str, Callable[[], bool]]) -> None:
        self._probes = dict(probes)

    def checks(self) -> dict[str, str]:
        """`{"database": "ok" | "unavailable", ...}`, one entry per probe."""
        return {name: OK if probe() else UNAVAILABLE for name, probe in self._probes.items()}

    @staticmethod
    def all_ok(checks: Mapping[str, str]) -> bool:
        """True when every check passed."""
        return all(result == OK for result in checks.values())
