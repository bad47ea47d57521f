"""The runtime image's contents, checked without a Docker engine: what `COPY . .` keeps, run from a runtime-only venv.

The image is the locked runtime dependencies (`uv sync --no-dev`) plus the files .dockerignore
lets through. This test builds exactly that beside the checkout and runs what the image runs.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
NOT_IN_THE_IMAGE = ("tests", "bench", ".ci", "docs")


def _ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore keeps `path` out (the simple patterns it uses: names, globs, ! exceptions)."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.removeprefix("!").removeprefix("**/")
        parts = path.split("/")
        if any(fnmatch.fnmatch(part, pattern) for part in parts) or fnmatch.fnmatch(path, pattern):
            ignored = not negate
    return ignored


def _dockerignore() -> list[str]:
    lines = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def _image_files() -> list[str]:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    patterns = _dockerignore()
    return [path for path in tracked if not _ignored(path, patterns)]


def test_the_image_holds_no_test_bench_or_ci_code() -> None:
    files = _image_files()
    assert files, "nothing would be copied"
    assert not [path for path in files if path.split("/")[0] in NOT_IN_THE_IMAGE]
    for needed in ("wsgi.py", "app.py", "gunicorn.conf.py", "alembic.ini", "migrations/env.py"):
        assert needed in files


def test_one_image_is_built_and_shared_by_the_migrations_and_the_api() -> None:
    compose = (REPO_ROOT / "docker-compose.yml").read_text()
    assert compose.count("build: .") == 1
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    runtime = dockerfile.rsplit("\nFROM ", 1)[1]
    assert "uv " not in runtime and "pip install" not in runtime  # no build tools in the final stage
    assert 'CMD ["gunicorn", "wsgi:app"]' in runtime


@pytest.mark.skipif(shutil.which("uv") is None, reason="uv builds the runtime-only virtualenv")
def test_the_image_contents_run_on_the_runtime_dependencies_alone(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv)}
    subprocess.run(["uv", "sync", "--frozen", "--no-dev", "--quiet"], cwd=REPO_ROOT, env=env, check=True, timeout=600)
    app_dir = tmp_path / "app"
    for path in _image_files():
        target = app_dir / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / path, target)
    python = venv / "bin" / "python"
    run_env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")} | {
        "APP_ENV": "production",
        "JWT_SECRET_KEY": "image-signing-key-that-is-at-least-32-bytes",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'posts.db'}",
        "CACHE_DIR": str(tmp_path / "cache"),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(python), *args], cwd=app_dir, env=run_env, capture_output=True, text=True, timeout=300, check=False
        )

    migrated = run("-m", "alembic", "upgrade", "head")
    assert migrated.returncode == 0, migrated.stderr
    spec = tmp_path / "openapi.yaml"
    written = run("-m", "flask", "--app", "wsgi", "openapi", "write", "-f", "yaml", str(spec))
    assert written.returncode == 0, written.stderr
    assert spec.read_text().startswith(("components:", "info:", "openapi:", "paths:", "tags:"))
    assert "/api/v1/posts/get_my_posts:" in spec.read_text()
    served = run("-c", "import wsgi, gunicorn.app.wsgiapp; print(wsgi.app.name)")
    assert served.returncode == 0, served.stderr
