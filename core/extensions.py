"""Flask extensions, created unbound here and bound to the app in the factory."""

from __future__ import annotations

import http
from typing import Any

from flask_caching import Cache
from flask_jwt_extended import JWTManager
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_smorest import Api as SmorestApi
from flask_smorest.utils import prepare_response

from blueprints.schemas import ErrorSchema, ValidationErrorSchema


class Api(SmorestApi):  # type: ignore[misc]
    """flask-smorest's Api documenting our error shapes: `{"error"}`, and 422's `{"status_code", "error", "extra"}`."""

    ERROR_SCHEMA = ErrorSchema
    # No catch-all `default` response: it would declare every status, so a fuzzer's status-code
    # check could never fail. Each view lists its errors instead (blueprints.docs.errors, 500 included).
    DEFAULT_ERROR_RESPONSE_NAME = None

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if not (100 <= status < 200) and status not in (204, 304):
                response["schema"] = ValidationErrorSchema if status == 422 else ErrorSchema
            prepare_response(response, self.spec, self.DEFAULT_RESPONSE_CONTENT_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        default = {"description": "Default error response", "schema": ErrorSchema}
        prepare_response(default, self.spec, self.DEFAULT_RESPONSE_CONTENT_TYPE)
        self.spec.components.response("DEFAULT_ERROR", default, lazy=True)


api = Api()
jwt = JWTManager()
cache = Cache()
# Per app: on/off and storage (RATELIMIT_* config, core.rate_limits). Fixed here: a moving window
# (no double burst at a window edge), no X-RateLimit-* headers (429 gets Retry-After from our
# handler), and if the shared storage fails, per-process memory counters instead of an error.
limiter = Limiter(
    get_remote_address,
    strategy="moving-window",
    headers_enabled=False,
    swallow_errors=True,
    in_memory_fallback_enabled=True,
    key_prefix="posts-api-limits",
)
