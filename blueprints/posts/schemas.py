"""Wire schemas of the posts endpoints (a listing's body is encoded by services.posts in PostSchema's shape)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from blueprints.schemas import RequestSchema


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


MAX_PAGE_SIZE = 1000


class ListingQuerySchema(RequestSchema):
    """Optional paging of the listing: `limit` posts older than the post `before`."""

    limit = fields.Integer(
        validate=validate.Range(1, MAX_PAGE_SIZE),
        metadata={
            "description": "At most this many posts (1 to 1000). Without `limit` and `before`: all of them; "
            "with `before` alone: 1000."
        },
    )
    before = fields.UUID(
        metadata={
            "description": "Only posts older than this one of yours (the last id of the previous page). "
            "An id that is not one of your posts gets 404."
        }
    )


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
