"""Every command block in README.md and docs/ is run in CI, or says here what runs it instead, or why nothing can.

Blocks marked `<!-- ci: NAME -->` are run by .ci/deploy-check, literally (only their placeholders
replaced). Every other block must be listed in ELSEWHERE with the test or script that covers it,
or the reason nothing here can run it (no Docker engine, no internet, not a command). A block
added to the docs without either fails this test; so does a marker the script does not run, or
a block the script asks for that the docs no longer mark.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PAGES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
DEPLOY_CHECK = REPO_ROOT / ".ci" / "deploy-check"
# Not commands: measurement headers and sample log lines.
NOT_RUN_LANGUAGES = {"text", "json"}
_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<language>\S*)")
_MARKER = re.compile(r"^\s*<!-- ci: (?P<name>[\w-]+) -->\s*$")

# (page, how the block's first line starts) -> what covers it.
ELSEWHERE = {
    ("docs/operations.md", "clients -> nginx"): "a diagram, not a command",
    ("docs/operations.md", "docker compose up --build -d"): (
        "needs a Docker engine (none here): .ci/compose-check validates the compose file, and"
        " tests/test_image.py runs its `docker compose run --rm app ...` command on the image's contents"
    ),
    ("docs/operations.md", "sudo cp deploy/nginx-hosts.conf"): (
        "the system's nginx: tests/e2e/test_nginx.py does these steps in a copy of Debian's /etc/nginx"
        " (the file into conf.d, the default site removed, nginx -t); .ci/deploy-check serves through it"
    ),
    (
        "docs/operations.md",
        "# prometheus.yml",
    ): "Prometheus's configuration; tests/e2e/test_metrics.py scrapes /metrics",
    ("docs/nginx.md", "sudo cp deploy/nginx-hosts.conf"): "as in docs/operations.md: tests/e2e/test_nginx.py",
    ("docs/nginx.md", "apt-get install -y nginx"): ".ci/run installs nginx so, then runs tests/e2e/test_nginx.py",
    ("docs/development.md", "uv run pytest "): ".ci/run",
    (
        "docs/development.md",
        "uv run openapi-python-client generate",
    ): "tests/e2e/test_sdk.py generates it from a live server",
    ("docs/development.md", "from posts_api_client import"): "tests/e2e/test_sdk.py drives the generated client so",
    ("docs/security.md", "uv run pytest -s -k mariadb"): "those tests run in the suite (.ci/run)",
    ("docs/operations.md", "export OTEL_EXPORTER_OTLP_ENDPOINT="): (
        "a collector of your own: tests/e2e/test_tracing.py serves with OTEL_EXPORTER_OTLP_ENDPOINT pointed at"
        " an OTLP receiver on 127.0.0.1; tests/test_tracing.py reads the sampler and the resource attributes"
    ),
    ("docs/benchmark.md", "# 1. A MariaDB for both"): (
        "clones the original service from GitHub: no internet here; tests/test_bench_harness.py covers the harness"
    ),
    ("docs/benchmark.md", "uv run --group bench python -m bench --db-only &"): (
        "the scale runs behind the recorded figures need the original service running beside ours (minutes each);"
        " tests/test_bench_scale.py covers the scale run's scripts, seeding and table"
    ),
}


def _covered(page: str, first: str) -> str | None:
    """What ELSEWHERE says covers the block, or None."""
    return next((why for (where, start), why in ELSEWHERE.items() if where == page and first.startswith(start)), None)


def _blocks() -> list[tuple[str, str, str | None]]:
    """(page, first line, marker name or None) of every fenced block that is not text or JSON."""
    found = []
    for page in PAGES:
        lines = page.read_text().splitlines()
        inside = False
        for number, line in enumerate(lines):
            fence = _FENCE.match(line)
            if fence is None:
                continue
            if inside:
                inside = False
                continue
            inside = True
            if fence.group("language") in NOT_RUN_LANGUAGES:
                continue
            first = next((body.strip() for body in lines[number + 1 :] if body.strip()), "")
            marker = _MARKER.match(lines[number - 1]) if number else None
            found.append((page.relative_to(REPO_ROOT).as_posix(), first, marker.group("name") if marker else None))
    return found


def test_every_command_block_is_run_by_deploy_check_or_covered_elsewhere() -> None:
    blocks = _blocks()
    assert len(blocks) > 10, blocks
    unaccounted = [(page, first) for page, first, name in blocks if name is None and _covered(page, first) is None]
    assert unaccounted == [], "blocks nothing runs: mark them for .ci/deploy-check or list them in ELSEWHERE"
    stale = [key for key in ELSEWHERE if not any(p == key[0] and f.startswith(key[1]) for p, f, _ in blocks)]
    assert stale == [], "ELSEWHERE lists blocks the docs no longer have"
    double = [(page, first) for page, first, name in blocks if name is not None and _covered(page, first)]
    assert double == [], "a block .ci/deploy-check runs needs no other cover"


def test_deploy_check_runs_exactly_the_marked_blocks() -> None:
    marked = {(page, name) for page, _, name in _blocks() if name is not None}
    script = DEPLOY_CHECK.read_text()
    asked = set(re.findall(r"\bblock (README\.md|docs/[\w.-]+\.md) ([\w-]+)", script))
    assert marked == asked
    assert len(marked) >= 8, marked


def test_the_covering_tests_named_exist() -> None:
    for reason in ELSEWHERE.values():
        for path in re.findall(r"\b(?:tests|\.ci)/[\w/.-]+", reason):
            assert (REPO_ROOT / path.rstrip(".,;")).exists(), path
