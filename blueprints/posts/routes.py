"""Add, list and delete the caller's own posts."""

from __future__ import annotations

import uuid
from typing import Any, cast

from flask import Response, request, url_for
from flask_jwt_extended import jwt_required

from blueprints.auth.tokens import current_user_id, jwt_required_in_header_or_body
from blueprints.openapi import BEARER_SECURITY, Blueprint, errors
from blueprints.posts.schemas import (
    MAX_PAGE_SIZE,
    AddPostSchema,
    DeletedSchema,
    ListingQuerySchema,
    PostCreatedSchema,
    PostIdSchema,
    PostSchema,
)
from dependencies import post_service

blp = Blueprint("posts", __name__, url_prefix="/api/v1/posts", description="Your own text posts.", tag="POSTS")


@blp.route("/add-post", methods=["POST"])
@jwt_required_in_header_or_body
# The example Swagger UI pre-fills: without it, its generated one sends `"token": "string"`.
@blp.arguments(AddPostSchema, example={"text": "Hello, world"})
@blp.response(200, PostCreatedSchema)
@blp.doc(security=BEARER_SECURITY)
@errors(blp, 401, 413, 503)
def add_post(payload: dict[str, Any]) -> dict[str, uuid.UUID]:
    """Add a post

    The text is stored byte for byte; the whole request body may be up to 1 MiB.
    """
    return {"id": post_service().add(current_user_id(), payload["text"])}


LINK_HEADER = {
    "description": 'The next page, while older posts remain: `<...?limit=..&before=..>; rel="next"`.',
    "schema": {"type": "string"},
}


@blp.route("/get_my_posts", methods=["GET"])
@jwt_required()
@blp.response(200, PostSchema(many=True), headers={"Link": LINK_HEADER})
@blp.doc(
    # Documented here and parsed in the view only when a query string is sent: parsing an empty
    # one (what @blp.arguments would do) costs about a quarter of a cached listing.
    parameters=[{"in": "query", "schema": ListingQuerySchema}],
    security=BEARER_SECURITY,
    # The original service's function was get_all_my_post; its operationId names the SDK's function.
    operationId="get_all_my_post_api_v1_posts_get_my_posts_get",
)
@errors(blp, 401, 404, 422, 503)
def get_my_posts() -> Response:
    """List my posts, newest first

    Served from a per-user cache for up to 5 minutes; your own adds and deletes show at once.
    With `limit` and/or `before`, one page from the database, and a `Link` header to the next.
    """
    headers = {"Cache-Control": "no-store"}
    query: dict[str, Any] = blp.ARGUMENTS_PARSER.parse(ListingQuerySchema, location="query") if request.args else {}
    if not query:
        return Response(post_service().listing(current_user_id()), mimetype="application/json", headers=headers)
    limit = query.get("limit", MAX_PAGE_SIZE)
    body, next_before = post_service().page(current_user_id(), limit, query.get("before"))
    if next_before is not None:
        next_page = url_for(cast(str, request.endpoint), limit=limit, before=str(next_before))
        headers["Link"] = f'<{next_page}>; rel="next"'
    return Response(body, mimetype="application/json", headers=headers)


@blp.route("/delete_my_post", methods=["DELETE"])
@jwt_required()
@blp.arguments(PostIdSchema, location="query")
@blp.response(200, DeletedSchema)
@blp.doc(security=BEARER_SECURITY)
@errors(blp, 401, 404, 503)
def delete_my_post(query: dict[str, Any]) -> dict[str, str]:
    """Delete one of my posts

    A post that does not exist or is not yours gets 404, and nothing changes.
    """
    post_service().delete(current_user_id(), query["post_id"])
    return {"status": "post deleted successfully"}
