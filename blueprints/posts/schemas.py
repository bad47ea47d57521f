"""Wire schemas of the posts endpoints, and the encoder of a cached listing."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from marshmallow import Schema, fields, validate

from blueprints.schemas import RequestSchema
from models.entities import Post


class AddPostSchema(RequestSchema):
    """A new post. The access token may also come here as `token` instead of the header."""

    text = fields.String(required=True, validate=validate.Length(min=1), metadata={"example": "Hello, world"})
    token = fields.String(
        load_only=True,
        metadata={"description": "Access token, when not sent in the Authorization header."},
    )


class PostIdSchema(RequestSchema):
    """Which post to delete."""

    post_id = fields.UUID(required=True)


class PostCreatedSchema(Schema):
    """The id of a new post."""

    id = fields.UUID(required=True)


class PostSchema(Schema):
    """One post in a listing."""

    id = fields.UUID(required=True)
    text = fields.String(required=True)
    created_at = fields.DateTime(required=True)


class DeletedSchema(Schema):
    """Confirmation of a deletion."""

    status = fields.String(required=True, metadata={"example": "post deleted successfully"})


def encode_listing(posts: Sequence[Post]) -> bytes:
    """The JSON body of a listing, encoded once and then cached as bytes (PostSchema's shape)."""
    return orjson.dumps([{"id": post.id, "text": post.text, "created_at": post.created_at} for post in posts])
