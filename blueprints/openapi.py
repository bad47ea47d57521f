"""The OpenAPI side of the HTTP layer: flask-smorest's Api and Blueprint as we use them, and doc helpers.

Views document themselves through these: `Blueprint` parses JSON bodies with the app's strict
decoder, `errors()` lists the error responses a view can give, `BEARER_SECURITY` marks the views
that need an access token.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import flask_smorest
from flask import Flask, Request, current_app
from webargs import core
from webargs.flaskparser import FlaskParser, abort, is_json_request

from blueprints.schemas import ErrorSchema, ValidationErrorSchema

F = TypeVar("F", bound=Callable[..., Any])

API_VERSION = "1.0.0"

# Either scheme works: Swagger UI's Authorize signs in (OAuth2 password flow) or takes a pasted token.
BEARER_SECURITY: list[dict[str, list[str]]] = [{"OAuth2PasswordBearer": []}, {"HTTPBearer": []}]

SECURITY_SCHEMES = {
    "OAuth2PasswordBearer": {
        "type": "oauth2",
        "flows": {"password": {"tokenUrl": "/api/v1/auth/sign_in", "scopes": {}}},
    },
    "HTTPBearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
}

ERROR_RESPONSE_NAMES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    404: "NOT_FOUND",
    413: "REQUEST_ENTITY_TOO_LARGE",
    422: "UNPROCESSABLE_ENTITY",
    429: "TOO_MANY_REQUESTS",
    500: "INTERNAL_SERVER_ERROR",
    503: "SERVICE_UNAVAILABLE",
}
# Any request can get these: the body limit is checked before routing, and 500 is anything unexpected.
ALWAYS_POSSIBLE = (413, 500)


def openapi_config() -> dict[str, object]:
    """flask-smorest's settings: where the document and the offline docs pages live."""
    return {
        "API_TITLE": "Posts API",
        "API_VERSION": API_VERSION,
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "docs",
        "OPENAPI_SWAGGER_UI_URL": "/static/vendor/swagger-ui/",
        "OPENAPI_SWAGGER_UI_CONFIG": {"persistAuthorization": True},
        "OPENAPI_REDOC_PATH": "redoc",
        "OPENAPI_REDOC_URL": "/static/vendor/redoc/redoc.standalone.js",
        "API_SPEC_OPTIONS": {
            "info": {"description": "Sign up, sign in, and keep your own text posts."},
            "components": {"securitySchemes": SECURITY_SCHEMES},
        },
    }


class Api(flask_smorest.Api):  # type: ignore[misc]
    """flask-smorest's Api documenting our error shapes: `{"error"}`, and 422's `{"status_code", "error", "extra"}`."""

    ERROR_SCHEMA = ErrorSchema
    # No catch-all `default` response: it would declare every status, so a fuzzer's status-code
    # check could never fail. Each view lists its errors instead (`errors()`, 500 included).
    DEFAULT_ERROR_RESPONSE_NAME = None

    def init_app(self, app: Flask, *, spec_kwargs: dict[str, Any] | None = None) -> None:
        """Bind to the app, then document 422 with the validation error shape instead of ERROR_SCHEMA."""
        super().init_app(app, spec_kwargs=spec_kwargs)
        # flask-smorest registers one lazy response per status, all with ERROR_SCHEMA; a lazy
        # registration under the same name replaces it before any operation refers to it.
        validation = {
            "description": "Validation error",
            "content": {self.DEFAULT_RESPONSE_CONTENT_TYPE: {"schema": ValidationErrorSchema}},
        }
        self.spec.components.response(ERROR_RESPONSE_NAMES[422], validation, lazy=True)


class AppJSONParser(FlaskParser):
    """webargs' Flask parser, decoding bodies with the app's JSON provider instead of the stdlib.

    One decoder for every path (webargs, `request.get_json`) means one set of rules for what
    counts as valid JSON; see blueprints.middleware.json_provider.
    """

    def load_json(self, req: Request, schema: Any) -> Any:
        """The body decoded by the app's strict decoder; `missing` when there is no JSON body."""
        if not is_json_request(req):
            return core.missing
        data = req.get_data(cache=True)
        if not data:
            return core.missing
        try:
            return current_app.json.loads(data)
        except json.JSONDecodeError as exc:
            # Reported like webargs reports unparseable JSON; the error handler makes it a 422.
            abort(400, exc=exc, messages={"json": ["Invalid JSON body."]})


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]
    """flask-smorest's Blueprint with AppJSONParser."""

    ARGUMENTS_PARSER = AppJSONParser()


def errors(blp: Blueprint, *statuses: int) -> Callable[[F], F]:
    """Document the error responses a view can give, plus those every request can get (ALWAYS_POSSIBLE)."""

    def decorator(view: F) -> F:
        for status in sorted({*statuses, *ALWAYS_POSSIBLE}):
            view = blp.alt_response(status, response=ERROR_RESPONSE_NAMES[status])(view)
        return view

    return decorator


api = Api()
