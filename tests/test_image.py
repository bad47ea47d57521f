"""The runtime image's contents, checked without a Docker engine: what `COPY . .` keeps, run from a runtime-only venv.

The image is the locked runtime dependencies (`uv sync --no-dev`) plus the files .dockerignore
lets through. These tests build exactly that beside the checkout and run what the image runs:
its CMD, the compose file's commands, and every command the docs run in a container
(`docker compose run --rm app ...`), literally, since no Docker engine runs here.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.support.mysql8 import Mysql8Login

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
    assert 'CMD ["python", "-m", "serving"]' in runtime


@dataclass(frozen=True)
class Image:
    """The image's contents beside the checkout: its code, its runtime-only virtualenv, compose's environment."""

    app_dir: Path
    venv: Path
    env: dict[str, str]

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """A command as the container runs it: from /app's copy, the virtualenv first on PATH."""
        return subprocess.run(
            list(args),
            cwd=self.app_dir,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def tools(self) -> set[str]:
        """What a container of the image can run by name: the virtualenv's commands and the base image's Python."""
        return {path.name for path in (self.venv / "bin").iterdir()} | {"python", "python3"}


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Image]:
    if shutil.which("uv") is None:
        pytest.skip("uv builds the runtime-only virtualenv")
    root = tmp_path_factory.mktemp("image")
    venv = root / "venv"
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv)}
    subprocess.run(["uv", "sync", "--frozen", "--no-dev", "--quiet"], cwd=REPO_ROOT, env=env, check=True, timeout=600)
    app_dir = root / "app"
    for path in _image_files():
        target = app_dir / path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / path, target)
    (app_dir / "instance").mkdir()
    # The runtime stage's ENV (the Dockerfile) and the app service's environment (docker-compose.yml).
    clean = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    run_env = clean | {
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "APP_ENV": "production",
        "JWT_SECRET_KEY": "image-signing-key-that-is-at-least-32-bytes",
        "DATABASE_URL": f"sqlite:///{root / 'posts.db'}",
        "CACHE_DIR": str(root / "cache"),
    }
    yield Image(app_dir, venv, run_env)


def test_the_image_contents_run_on_the_runtime_dependencies_alone(image: Image, tmp_path: Path) -> None:
    migrated = image.run("alembic", "upgrade", "head")
    assert migrated.returncode == 0, migrated.stderr
    spec = tmp_path / "openapi.yaml"
    written = image.run("flask", "--app", "wsgi", "openapi", "write", "-f", "yaml", str(spec))
    assert written.returncode == 0, written.stderr
    assert spec.read_text().startswith(("components:", "info:", "openapi:", "paths:", "tags:"))
    assert "/api/v1/posts/get_my_posts:" in spec.read_text()
    # The image's CMD, up to gunicorn's own check of its configuration and the app (no socket).
    checked = image.run("python", "-m", "serving", "--check-config")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _normal(name: str) -> str:
    """A distribution's name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def test_no_dev_package_is_in_the_runtime_virtualenv(image: Image) -> None:
    installed = image.run(
        "python", "-c", "import importlib.metadata as m; print(*sorted(d.name.lower() for d in m.distributions()))"
    )
    assert installed.returncode == 0, installed.stderr
    names = set(installed.stdout.split())
    runtime = subprocess.run(
        ["uv", "export", "--frozen", "--no-dev", "--no-hashes", "--no-header", "--no-annotate"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    locked = {_normal(re.split(r"[=<>; \[]", line, maxsplit=1)[0]) for line in runtime.splitlines() if line.strip()}
    normal = {_normal(name) for name in names}
    assert normal <= locked, normal - locked
    assert not {"pytest", "ruff", "mypy", "playwright", "schemathesis"} & normal
    assert "cryptography" in normal  # pymysql[rsa]


def test_mysql8s_default_login_works_from_the_image_without_tls(image: Image) -> None:
    """pymysql[rsa]: the runtime dependencies include `cryptography` (tests/test_mysql8_login.py)."""
    server = Mysql8Login("posts", "Mysql8-pa55word")
    try:
        connect = (
            f"import pymysql; pymysql.connect(host='127.0.0.1', port={server.port}, user='posts',"
            " password='Mysql8-pa55word', database='posts', connect_timeout=5).close()"
        )
        logged_in = image.run("python", "-c", connect)
        assert logged_in.returncode == 0, logged_in.stderr
        assert server.logins == [True]
    finally:
        server.close()


# `docker compose run --rm app <command>` or `docker compose exec app <command>` in the docs.
_CONTAINER_COMMAND = re.compile(r"docker compose (?:run --rm|exec) (?P<service>app|migrate) (?P<command>[a-z][^`\n#]*)")


def _documented_container_commands() -> list[tuple[str, str]]:
    """(file, command) for every command the README and docs/ run in one of the image's containers."""
    found = []
    for page in [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]:
        for match in _CONTAINER_COMMAND.finditer(page.read_text()):
            found.append((page.relative_to(REPO_ROOT).as_posix(), match.group("command").strip()))
    return found


def test_the_docs_run_operator_commands_in_containers() -> None:
    """The test below must have something to check: the docs do run the CLI in the compose setup."""
    commands = [command for _, command in _documented_container_commands()]
    assert any(command.startswith("flask --app wsgi users create") for command in commands), commands
    assert any(command.startswith("flask --app wsgi users list") for command in commands), commands


def test_every_command_the_docs_run_in_a_container_works_in_the_image(image: Image) -> None:
    """Issue 27: the docs said `docker compose run --rm app uv run ... flask`, and the image has no uv."""
    assert image.run("alembic", "upgrade", "head").returncode == 0
    for page, command in _documented_container_commands():
        words = shlex.split(command)
        assert words[0] in image.tools(), f"{page}: `{command}`: the image has no {words[0]}"
        if "..." in words:  # a pattern (`flask --app wsgi ...`), not a command to run
            continue
        # Run it as the container would; a password prompt gets the same password twice.
        result = image.run(*words, stdin="image-password-1\nimage-password-1\n")
        assert result.returncode == 0, (page, command, result.stdout, result.stderr)


def test_the_compose_files_commands_exist_in_the_image(image: Image) -> None:
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    for name in ("migrate", "app"):
        service = compose["services"][name]
        command = service.get("command") or []
        health = service.get("healthcheck", {}).get("test", [])
        for words in (command, health[1:] if health[:1] == ["CMD"] else []):
            if words:
                assert words[0] in image.tools(), (name, words)
