"""The OpenAPI side of the HTTP layer: flask-smorest's Api and Blueprint as we use them, and doc helpers.

Views document themselves through these: `Blueprint` parses JSON bodies with the app's strict
decoder, `errors()` lists the error responses a view can give, `BEARER_SECURITY` marks the views
that need an access token.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, TypeVar, cast

import flask_smorest
from apispec import BasePlugin
from apispec.ext.marshmallow import MarshmallowPlugin, resolver
from apispec.ext.marshmallow.common import resolve_schema_cls
from flask import Flask, Request, current_app
from flask_smorest.pagination import PaginationMetadataSchema
from marshmallow import Schema
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
    501: "NOT_IMPLEMENTED",
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


def fastapi_operation_id(function_name: str, path: str, method: str) -> str:
    """FastAPI's default operationId: `{function}{path}_{method}`, every non-word character made `_`.

    The original service's document used these ids; an SDK generator names its functions and
    modules after them (`sign_in_api_v1_auth_sign_in_post`), so ours must be the same.
    """
    return re.sub(r"\W", "_", function_name + path) + "_" + method.lower()


class FastAPIOperationIds(BasePlugin):
    """apispec plugin: every operation gets FastAPI's default operationId unless its view sets one.

    A view whose function is not named as the original's sets its id with `@blp.doc(operationId=...)`.
    """

    def operation_helper(
        self, path: str | None = None, operations: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        """Fill in the missing operationIds of one path, from its view's function name."""
        rule = kwargs.get("rule")
        if path is None or operations is None or rule is None:
            return
        function_name = rule.endpoint.rsplit(".", 1)[-1]  # "auth.sign_in" -> "sign_in"
        for method, operation in operations.items():
            if isinstance(operation, dict):
                operation.setdefault("operationId", fastapi_operation_id(function_name, path, method))


def schema_name(schema: type[Schema] | Schema | str) -> str | None:
    """Component name of a marshmallow schema: its `OPENAPI_NAME`, else the class name minus `Schema`.

    None (inline it, no component) for flask-smorest's PaginationMetadataSchema: flask-smorest
    registers it for its page/page_size pagination, which no operation here uses.
    """
    resolved = resolve_schema_cls(schema)
    schema_class = resolved[0] if isinstance(resolved, list) else resolved
    if schema_class is PaginationMetadataSchema:
        return None
    name: str = getattr(schema_class, "OPENAPI_NAME", None) or resolver(schema_class)
    return name


def spec_plugins() -> dict[str, Any]:
    """flask-smorest `spec_kwargs` for a new APISpec: schema names and operationIds as above."""
    return {
        # apispec's hint says str, its docs say None inlines the schema (what schema_name wants).
        "marshmallow_plugin": MarshmallowPlugin(schema_name_resolver=cast(Callable[[type[Schema]], str], schema_name)),
        "extra_plugins": [FastAPIOperationIds()],
    }


class Api(flask_smorest.Api):  # type: ignore[misc]
    """flask-smorest's Api documenting our error shapes: `{"error"}`, and 422's `{"status_code", "error", "extra"}`.

    Its document names operations, tags and the sign-in form as the original FastAPI service's
    did, so SDKs generated from either document are interchangeable (spec_plugins, Blueprint.tag).
    """

    ERROR_SCHEMA = ErrorSchema
    # No catch-all `default` response: it would declare every status, so a fuzzer's status-code
    # check could never fail. Each view lists its errors instead (`errors()`, 500 included).
    DEFAULT_ERROR_RESPONSE_NAME = None

    def init_app(self, app: Flask, *, spec_kwargs: dict[str, Any] | None = None) -> None:
        """Bind to the app, then document 422 with the validation error shape instead of ERROR_SCHEMA.

        Each binding gets fresh plugins of our own (spec_plugins): the plugins hold their APISpec's state.
        """
        super().init_app(app, spec_kwargs={**spec_plugins(), **(spec_kwargs or {})})
        # flask-smorest registers one lazy response per status, all with ERROR_SCHEMA; a lazy
        # registration under the same name replaces it before any operation refers to it.
        validation = {
            "description": "Validation error",
            "content": {self.DEFAULT_RESPONSE_CONTENT_TYPE: {"schema": ValidationErrorSchema}},
        }
        self.spec.components.response(ERROR_RESPONSE_NAMES[422], validation, lazy=True)

    def register_blueprint(self, blp: Any, *, parameters: list[Any] | None = None, **options: Any) -> None:
        """Register as flask-smorest does, listing the blueprint's `tag` (not its Flask name) in the document."""
        super().register_blueprint(blp, parameters=parameters, **options)
        tag = {"name": getattr(blp, "tag", blp.name), "description": blp.description}
        # Top-level keys in the spec's options replace those apispec builds (flask-smorest's
        # tag list names blueprints by their Flask names).
        self.spec.options["tags"] = [*self.spec.options.get("tags", []), tag]


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
    """flask-smorest's Blueprint with AppJSONParser, and an OpenAPI tag of its own.

    `tag` names the group of the blueprint's operations in the OpenAPI document (and so the
    module of a generated SDK: `api/<tag>/...`). It is the original FastAPI service's tag, not
    the Flask blueprint name, which stays a short identifier in endpoint names (`auth.sign_in`).
    """

    ARGUMENTS_PARSER = AppJSONParser()

    def __init__(self, *args: Any, tag: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tag: str = tag or self.name

    def add_url_rule(
        self,
        rule: str,
        endpoint: str | None = None,
        view_func: Any = None,
        provide_automatic_options: bool | None = None,
        *,
        parameters: list[Any] | None = None,
        tags: list[str] | None = None,
        **options: Any,
    ) -> None:
        """Register the rule as flask-smorest does, tagging its operations with this blueprint's tag."""
        super().add_url_rule(
            rule,
            endpoint,
            view_func,
            provide_automatic_options,
            parameters=parameters,
            tags=[self.tag] if tags is None else tags,
            **options,
        )


def errors(blp: Blueprint, *statuses: int) -> Callable[[F], F]:
    """Document the error responses a view can give, plus those every request can get (ALWAYS_POSSIBLE)."""

    def decorator(view: F) -> F:
        for status in sorted({*statuses, *ALWAYS_POSSIBLE}):
            view = blp.alt_response(status, response=ERROR_RESPONSE_NAMES[status])(view)
        return view

    return decorator


api = Api()
