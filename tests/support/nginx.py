"""Throwaway nginx for tests: a shipped site configuration, rendered for 127.0.0.1 ports, run as a child process.

Two files are shipped: deploy/nginx.conf for docker compose and deploy/nginx-hosts.conf for
hosts without Docker. Debian's nginx 1.22 has neither `server ... resolve` nor Docker's DNS, so
:func:`render_site` replaces exactly three things of the compose file (the resolver line, the
upstream's `server` line, `listen`); :func:`render_hosts_site` replaces the hosts file's
upstream `server` lines and `listen`. Everything else is kept, so a test on the rendered file
tests the shipped one.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from tests.support.gunicorn import REPO_ROOT
from tests.support.net import free_port

__all__ = ["HOSTS_CONFIG", "SHIPPED_CONFIG", "NginxServer", "nginx_path", "render_hosts_site", "render_site"]

SHIPPED_CONFIG = REPO_ROOT / "deploy" / "nginx.conf"
HOSTS_CONFIG = REPO_ROOT / "deploy" / "nginx-hosts.conf"
_SEARCH_DIRS = ("/usr/sbin", "/usr/local/sbin", "/usr/local/nginx/sbin")
_START_TIMEOUT = 15.0
_STOP_TIMEOUT = 15.0

# Docker's embedded DNS; only `resolve` needs it, and 127.0.0.1 ports need no name resolution.
_RESOLVER = re.compile(r"^resolver\s+127\.0\.0\.11\b[^;]*;\s*$", re.MULTILINE)
# `server app:8000 resolve <parameters>;`: every replica behind one name. The parameters after
# `resolve` (max_fails, fail_timeout, ...) are kept on each rendered server line.
_UPSTREAM_SERVER = re.compile(r"^(?P<indent>[ \t]*)server\s+app:8000\s+resolve(?P<params>[^;]*);[ \t]*$", re.MULTILINE)
_LISTEN = re.compile(r"^(?P<indent>[ \t]*)listen\s+80\s*;[ \t]*$", re.MULTILINE)
# The hosts file's upstream: one `server <host>:<port> <parameters>;` line per instance.
_ADDRESS_SERVER = re.compile(r"^(?P<indent>[ \t]*)server\s+[^\s;]+:\d+(?P<params>[^;]*);[ \t]*$", re.MULTILINE)


def nginx_path() -> str | None:
    """Path of the nginx binary (PATH, then /usr/sbin and friends); None if it is not installed."""
    search_path = os.pathsep.join([os.environ.get("PATH", ""), *_SEARCH_DIRS])
    return shutil.which("nginx", path=search_path)


def _replace_once(pattern: re.Pattern[str], replacement: str, text: str, what: str) -> str:
    rendered, count = pattern.subn(lambda _match: replacement, text)
    if count != 1:
        raise AssertionError(f"deploy/nginx.conf must have exactly one {what}, found {count}")
    return rendered


def render_site(shipped: str, upstream_ports: Sequence[int], listen_port: int) -> str:
    """The shipped server configuration with 127.0.0.1 upstreams and listen port; everything else untouched.

    Raises AssertionError when the shipped file no longer has the lines this replaces, so a
    reshaped file fails the tests instead of silently testing something else.
    """
    match = _UPSTREAM_SERVER.search(shipped)
    if match is None:
        raise AssertionError("deploy/nginx.conf has no `server app:8000 resolve ...;` line in its upstream")
    indent, params = match.group("indent"), match.group("params")
    servers = "\n".join(f"{indent}server 127.0.0.1:{port}{params};" for port in upstream_ports)
    rendered = _replace_once(_UPSTREAM_SERVER, servers, shipped, "`server app:8000 resolve` line")
    no_resolver = "# (test) Docker's resolver removed: the upstreams are addresses"
    rendered = _replace_once(_RESOLVER, no_resolver, rendered, "resolver line")
    listen = _LISTEN.search(rendered)
    assert listen is not None, "deploy/nginx.conf has no `listen 80;` line"
    return _replace_once(_LISTEN, f"{listen.group('indent')}listen 127.0.0.1:{listen_port};", rendered, "`listen 80;`")


def render_hosts_site(shipped: str, upstream_ports: Sequence[int], listen_port: int) -> str:
    """deploy/nginx-hosts.conf with its instances on the given 127.0.0.1 ports and `listen` on `listen_port`.

    The shipped lines must sit together and share their parameters, which every rendered line
    keeps; AssertionError when the file no longer has that shape.
    """
    matches = list(_ADDRESS_SERVER.finditer(shipped))
    assert matches, "deploy/nginx-hosts.conf has no `server <host>:<port> ...;` line"
    assert len({match.group("params") for match in matches}) == 1, "the upstream's server lines differ in parameters"
    first, last = matches[0], matches[-1]
    between = shipped[first.start() : last.end()]
    assert len(between.splitlines()) == len(matches), "the upstream's server lines are not together"
    indent, params = first.group("indent"), first.group("params")
    servers = "\n".join(f"{indent}server 127.0.0.1:{port}{params};" for port in upstream_ports)
    rendered = shipped[: first.start()] + servers + shipped[last.end() :]
    listen = _LISTEN.search(rendered)
    assert listen is not None, "deploy/nginx-hosts.conf has no `listen 80;` line"
    return _replace_once(_LISTEN, f"{listen.group('indent')}listen 127.0.0.1:{listen_port};", rendered, "`listen 80;`")


def _main_config(root: Path, site: Path) -> str:
    """A minimal nginx.conf around the site: one worker, every file and temp path in `root`."""
    user = "user root;\n" if os.geteuid() == 0 else ""  # as root, workers would run as nobody (no access to root)
    temp = "\n".join(
        f"    {name}_temp_path {root / 'temp' / name};" for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"{user}worker_processes 1;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        f"{temp}\n"
        "    log_format upstreams '$request_method $request_uri $status upstream=$upstream_addr '\n"
        "                         'upstream_status=$upstream_status';\n"
        f"    access_log {root / 'access.log'} upstreams;\n"
        f"    include {site};\n"
        "}\n"
    )


class NginxServer:
    """nginx in front of the given 127.0.0.1 ports with the shipped site configuration, in its own directory."""

    def __init__(
        self, root: Path, upstream_ports: Sequence[int], *, shipped: str | None = None, hosts: bool = False
    ) -> None:
        """Write the configuration under `root` (not started yet).

        The site is deploy/nginx.conf, or deploy/nginx-hosts.conf with `hosts`; `shipped` overrides its text.
        """
        binary = nginx_path()
        if binary is None:
            raise RuntimeError("nginx not found (is nginx installed?)")
        self._binary = binary
        self.root = root
        (root / "temp").mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.site_path = root / "default.conf"
        render, config = (render_hosts_site, HOSTS_CONFIG) if hosts else (render_site, SHIPPED_CONFIG)
        self.site_path.write_text(render(shipped or config.read_text(), upstream_ports, self.port))
        self.config_path = root / "nginx.conf"
        self.config_path.write_text(_main_config(root, self.site_path))
        self.log_path = root / "nginx.log"
        self.access_log_path = root / "access.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        """Base URL, e.g. http://127.0.0.1:1234."""
        return f"http://127.0.0.1:{self.port}"

    def _command(self, *extra: str) -> list[str]:
        pid = self.root / "nginx.pid"
        return [
            self._binary, "-p", str(self.root), "-c", str(self.config_path), "-e", "stderr",
            "-g", f"daemon off; pid {pid}; error_log stderr;", *extra,
        ]  # fmt: skip

    def check(self) -> subprocess.CompletedProcess[str]:
        """`nginx -t` on the rendered configuration (returncode and output)."""
        return subprocess.run(self._command("-t"), capture_output=True, text=True, timeout=_START_TIMEOUT, check=False)

    def start(self) -> None:
        """Start nginx in the foreground of a child process and wait until /nginx-health answers."""
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                self._command(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"nginx exited with {self._proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.base + "/nginx-health", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"nginx did not answer /nginx-health within {_START_TIMEOUT:.0f}s:\n{self.log()}")

    def stop(self) -> None:
        """Stop nginx (SIGTERM: fast shutdown; SIGKILL if it hangs); nothing if it is not running."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            self._proc = None
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # its own session: only this nginx's master and worker
            proc.wait()
        self._proc = None

    def log(self) -> str:
        """nginx's error log (stderr) so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def access_log(self) -> list[str]:
        """The access log's lines: method, URI, status, the upstream addresses tried and their statuses."""
        if not self.access_log_path.exists():
            return []
        return self.access_log_path.read_text(errors="replace").splitlines()
