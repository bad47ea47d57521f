"""Add, list and delete the caller's own posts."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, request
from flask_jwt_extended import jwt_required

from blueprints.auth.tokens import (
    current_user_id,
    jwt_required_in_header_or_body,
    unchecked_generation,
    write_checks_the_session,
)
from blueprints.openapi import BEARER_SECURITY, Blueprint, errors
from blueprints.posts.listing import DOCUMENTED_HEADERS, LINK_HEADER, listing_query, listing_response, validators
from blueprints.posts.schemas import (
    AddPostSchema,
    DeletedSchema,
    ListingHeadersSchema,
    ListingQuerySchema,
    PostCreatedSchema,
    PostIdSchema,
    PostSchema,
)
from dependencies import post_service
from services.posts import Page

blp = Blueprint("posts", __name__, url_prefix="/api/v1/posts", description="Your own text posts.", tag="POSTS")


@blp.route("/add-post", methods=["POST"])
@write_checks_the_session
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
    return {"id": post_service().add(current_user_id(), payload["text"], unchecked_generation())}


@blp.route("/get_my_posts", methods=["GET"])
@jwt_required()
# Documented here and read by `listing_query` only when sent: most listings send neither.
@blp.doc(parameters=[{"in": "header", "schema": ListingHeadersSchema}, {"in": "query", "schema": ListingQuerySchema}])
@blp.response(200, PostSchema(many=True), headers={**DOCUMENTED_HEADERS, **LINK_HEADER})
@blp.alt_response(304, description="Not Modified: your copy is current.", headers=DOCUMENTED_HEADERS)
# The original service's function was get_all_my_post; its operationId names the SDK's function.
@blp.doc(security=BEARER_SECURITY, operationId="get_all_my_post_api_v1_posts_get_my_posts_get")
@errors(blp, 401, 404, 422, 503)
def get_my_posts() -> Response:
    """List my posts, newest first

    Without parameters, the whole list, however long (sent in chunks when large). With `limit`
    and/or `before`, one page, and a `Link: <...>; rel="next"` header while older posts remain.
    Served from a per-user cache for up to 5 minutes; your own adds and deletes show at once.
    Send the `ETag` back in `If-None-Match` to get 304 while your copy is current.
    """
    query = listing_query()
    page = Page(query.get("limit"), query.get("before"))
    listing = post_service().listing(current_user_id(), page, validators(request.headers.get("If-None-Match", "")))
    return listing_response(listing, query)


@blp.route("/delete_my_post", methods=["DELETE"])
@write_checks_the_session
@jwt_required()
@blp.arguments(PostIdSchema, location="query")
@blp.response(200, DeletedSchema)
@blp.doc(security=BEARER_SECURITY)
@errors(blp, 401, 404, 503)
def delete_my_post(query: dict[str, Any]) -> dict[str, str]:
    """Delete one of my posts

    A post that does not exist or is not yours gets 404, and nothing changes.
    """
    post_service().delete(current_user_id(), query["post_id"], unchecked_generation())
    return {"status": "post deleted successfully"}
