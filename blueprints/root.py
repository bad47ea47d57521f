"""The root endpoint: a liveness answer that points at the documentation."""

from __future__ import annotations

from marshmallow import Schema, fields

from blueprints.openapi import Blueprint, errors

blp = Blueprint("root", __name__, description="Service information.", tag="Home")


class RootSchema(Schema):
    """What `GET /` answers."""

    message = fields.String(required=True)
    docs = fields.String(required=True)
    openapi = fields.String(required=True)


@blp.route("/", methods=["GET"])
@blp.response(200, RootSchema)
@errors(blp)
def index() -> dict[str, str]:
    """Say the service is up and where its documentation lives."""
    return {"message": "Posts API is running", "docs": "/docs", "openapi": "/openapi.json"}
