"""What serving/, gunicorn.conf.py and the logger class it names take from gunicorn's internals is still there.

pyproject pins gunicorn to the major version these were written against (`>=27,<28`). Most of what
they use is not gunicorn's public API: a subclassed worker's methods and their signatures, helpers
in `gunicorn.util`, the request and response objects' attributes, and the names of settings and
server hooks. gunicorn ignores a setting it no longer knows, and a renamed method is simply never
called, so an upgrade would fail quietly; each check below names what went missing instead.
"""

from __future__ import annotations

import inspect
import runpy
from pathlib import Path
from types import FunctionType, ModuleType
from typing import Any

import gunicorn
import pytest
from gunicorn import util
from gunicorn.arbiter import Arbiter
from gunicorn.config import Config
from gunicorn.glogging import Logger
from gunicorn.http import errors as http_errors
from gunicorn.http.message import Request
from gunicorn.http.wsgi import Response, default_environ
from gunicorn.pidfile import Pidfile
from gunicorn.workers import base_async
from gunicorn.workers.base import Worker as BaseWorker
from gunicorn.workers.ggevent import GeventWorker

CONF_FILE = Path(__file__).resolve().parent.parent / "gunicorn.conf.py"

# Each function or method serving/ or observability/gunicorn_logger.py calls or overrides, with the
# parameters it passes or receives (in order).
SIGNATURES: list[tuple[str, Any, list[str]]] = [
    ("gunicorn.util.close_graceful", util.close_graceful, ["sock", "timeout", "max_drain"]),
    ("gunicorn.util.write_nonblock", util.write_nonblock, ["sock", "data"]),
    ("gunicorn.http.wsgi.default_environ", default_environ, ["req", "sock", "cfg"]),
    ("gunicorn.http.wsgi.Response.__init__", Response.__init__, ["self", "req", "sock", "cfg"]),
    ("gunicorn.http.message.Request.force_close", Request.force_close, ["self"]),
    ("GeventWorker.load_wsgi", GeventWorker.load_wsgi, ["self"]),
    ("GeventWorker.handle_request", GeventWorker.handle_request, ["self", "listener_name", "req", "sock", "addr"]),
    ("GeventWorker.handle_error", GeventWorker.handle_error, ["self", "req", "client", "addr", "exc"]),
    ("gunicorn.glogging.Logger.setup", Logger.setup, ["self", "cfg"]),
    ("gunicorn.glogging.Logger.access", Logger.access, ["self", "resp", "req", "environ", "request_time"]),
    ("gunicorn.glogging.Logger.exception", Logger.exception, ["self", "msg"]),
    ("gunicorn.pidfile.Pidfile.unlink", Pidfile.unlink, ["self"]),
]

# serving/errors.py maps these to statuses (and blames the client for the ParseException ones).
HTTP_ERRORS = [
    "ConfigurationProblem",
    "ExpectationFailed",
    "ForbiddenProxyRequest",
    "InvalidResponseHeader",
    "InvalidResponseHeaderName",
    "LimitRequestHeaders",
    "LimitRequestLine",
    "ParseException",
    "UnsupportedTransferCoding",
]

# Instance attributes read or set on gunicorn's objects, found in the source of the __init__ that sets them.
INSTANCE_ATTRIBUTES: list[tuple[str, Any, list[str]]] = [
    # serving/worker.py builds one for the access log of a refused request; gunicorn_logger reads it.
    ("gunicorn.http.wsgi.Response", Response.__init__, ["status", "response_length", "sent", "headers"]),
    # The worker's own attributes serving/worker.py uses (self.wsgi is set by load_wsgi, below).
    ("gunicorn.workers.base.Worker", BaseWorker.__init__, ["pid", "cfg", "log"]),
    # observability/gunicorn_hooks.py gets the arbiter as `server`.
    ("gunicorn.arbiter.Arbiter", Arbiter.__init__, ["log", "pidfile"]),
    # observability/gunicorn_logger.py reads and rewires these.
    ("gunicorn.glogging.Logger", Logger.__init__, ["error_log", "access_log"]),
    ("gunicorn.glogging.Logger.setup", Logger.setup, ["loglevel"]),
]


def _parameters(function: Any) -> list[str]:
    return [
        name
        for name, parameter in inspect.signature(function).parameters.items()
        if parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    ]


def _conf_settings() -> dict[str, Any]:
    """Every setting and hook gunicorn.conf.py defines (gunicorn reads its module-level names)."""
    namespace = runpy.run_path(str(CONF_FILE))
    return {
        name: value
        for name, value in namespace.items()
        if not name.startswith("_") and not isinstance(value, ModuleType) and name != "annotations"
    }


def test_gunicorn_is_the_pinned_major_version() -> None:
    assert gunicorn.__version__.split(".")[0] == "27", (
        f"gunicorn {gunicorn.__version__} is installed; pyproject pins 27.x: re-check this file's list first"
    )


@pytest.mark.parametrize(("name", "function", "expected"), SIGNATURES, ids=[row[0] for row in SIGNATURES])
def test_each_function_serving_uses_keeps_its_signature(name: str, function: Any, expected: list[str]) -> None:
    assert isinstance(function, FunctionType), f"{name} is gone or no longer a function"
    actual = _parameters(function)
    assert actual[: len(expected)] == expected, f"{name} now takes {actual}, serving/ expects {expected}"


@pytest.mark.parametrize("name", HTTP_ERRORS)
def test_each_http_error_class_serving_maps_exists(name: str) -> None:
    error = getattr(http_errors, name, None)
    assert isinstance(error, type) and issubclass(error, Exception), f"gunicorn.http.errors.{name} is gone"


@pytest.mark.parametrize(
    ("owner", "init", "attributes"), INSTANCE_ATTRIBUTES, ids=[row[0] for row in INSTANCE_ATTRIBUTES]
)
def test_each_attribute_serving_reads_is_still_set(owner: str, init: Any, attributes: list[str]) -> None:
    source = inspect.getsource(init)
    missing = [name for name in attributes if f"self.{name} =" not in source]
    assert not missing, f"{owner} no longer sets {missing}"


def test_the_logger_still_has_its_access_log_switch() -> None:
    # GunicornLogger.access returns early unless this property says the access log is on.
    assert isinstance(inspect.getattr_static(Logger, "access_log_enabled", None), property), (
        "gunicorn.glogging.Logger.access_log_enabled (a property) is gone"
    )


def test_load_wsgi_still_sets_the_wsgi_app_the_worker_wraps() -> None:
    assert "self.wsgi =" in inspect.getsource(BaseWorker.load_wsgi), "Worker.load_wsgi no longer sets self.wsgi"


def test_the_gevent_worker_still_inherits_the_async_request_loop() -> None:
    # serving/worker.py relies on handle_request raising StopIteration when the connection closes
    # (it lingers then), which is base_async's convention, and on handle_error being the one
    # place gunicorn answers a request it refused.
    assert issubclass(GeventWorker, base_async.AsyncWorker), "GeventWorker no longer extends AsyncWorker"
    assert "raise StopIteration" in inspect.getsource(base_async.AsyncWorker.handle_request), (
        "AsyncWorker.handle_request no longer signals a closing connection with StopIteration"
    )


def test_every_setting_and_hook_in_the_conf_file_is_known_and_accepted() -> None:
    settings = _conf_settings()
    known = Config().settings
    unknown = sorted(name for name in settings if name not in known)
    assert not unknown, f"gunicorn no longer knows these gunicorn.conf.py settings (it would ignore them): {unknown}"
    config = Config()
    for name, value in settings.items():
        # Validates the value, and for hooks their arity.
        config.set(name, value)
    assert config.worker_class.__name__ == "Worker"
    assert config.logger_class.__name__ == "GunicornLogger"
