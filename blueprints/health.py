"""Health endpoints for load balancers and orchestrators: liveness and readiness, no auth."""

from __future__ import annotations

from flask import Response
from marshmallow import Schema, fields

from blueprints.errors import RETRY_AFTER_SECONDS, json_response
from blueprints.openapi import Blueprint
from blueprints.schemas import ErrorSchema
from dependencies import readiness_checks

blp = Blueprint("health", __name__, description="Liveness and readiness probes (no authentication).", tag="Health")

NO_STORE = {"Cache-Control": "no-store"}


class AliveSchema(Schema):
    """What `GET /healthz` answers."""

    status = fields.String(required=True, metadata={"example": "alive"})


class ChecksSchema(Schema):
    """One entry per dependency: "ok" when it is usable, otherwise what is wrong with it."""

    database = fields.String(
        required=True, metadata={"example": "ok", "enum": ["ok", "unavailable"], "description": "SELECT 1 answers"}
    )
    schema = fields.String(
        required=True,
        metadata={
            "example": "ok",
            "enum": ["ok", "not migrated", "unknown revision", "unavailable"],
            "description": (
                "The database's Alembic revision against this release's head. `not migrated`: empty or behind, "
                "run `alembic upgrade head`; `unknown revision`: migrated by a newer release; `unavailable`: "
                "the database cannot be asked."
            ),
        },
    )
    redis = fields.String(metadata={"example": "ok", "description": "present only when REDIS_URL is set"})


class ReadySchema(Schema):
    """What `GET /readyz` answers when every dependency is reachable."""

    status = fields.String(required=True, metadata={"example": "ready"})
    checks = fields.Nested(ChecksSchema, required=True)


class NotReadySchema(ErrorSchema):
    """The contract's error shape, plus which dependency failed."""

    checks = fields.Nested(ChecksSchema, required=True)


@blp.route("/healthz", methods=["GET"])
@blp.response(200, AliveSchema)
def healthz() -> Response:
    """Liveness: the process answers

    No I/O at all: a database or Redis outage must not get healthy processes restarted.
    """
    return json_response({"status": "alive"}, 200, NO_STORE)


@blp.route("/readyz", methods=["GET"])
@blp.response(200, ReadySchema)
@blp.alt_response(503, schema=NotReadySchema, description="A dependency is unreachable or the schema is not migrated")
def readyz() -> Response:
    """Readiness: the database answers, its schema is migrated, and Redis (when configured) answers

    Each check is bounded by a timeout of a few seconds; a failing one gives 503 with `Retry-After`.
    An unmigrated database is `"schema": "not migrated"`: run `alembic upgrade head`.
    """
    probes = readiness_checks()
    checks = probes.checks()
    if probes.all_ok(checks):
        return json_response({"status": "ready", "checks": checks}, 200, NO_STORE)
    body = {"error": "Service not ready", "checks": checks}
    return json_response(body, 503, {**NO_STORE, "Retry-After": RETRY_AFTER_SECONDS})
