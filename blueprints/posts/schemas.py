"""Wire schemas of the posts endpoints (a listing's body is encoded by services.posts in PostSchema's shape)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from blueprints.schemas import RequestSchema
from services.posts import MAX_PAGE_POSTS


class AddPostSchema(RequestSchema):
    """A new post. The access token may also come here as `token` instead of the header."""

    text = fields.String(required=True, validate=validate.Length(min=1), metadata={"example": "Hello, world"})
    token = fields.String(
        load_only=True,
        metadata={"description": "Access token, when not sent in the Authorization header."},
    )


class ListingQuerySchema(RequestSchema):
    """Which page of the listing; without either parameter, the whole listing."""

    limit = fields.Integer(
        validate=validate.Range(min=1, max=MAX_PAGE_POSTS),
        metadata={
            "description": f"At most this many posts (1 to {MAX_PAGE_POSTS}). A page also ends early, "
            "with a `next` link, once its body would pass 1 MiB."
        },
    )
    before = fields.UUID(
        metadata={
            "description": "Only posts older than this one of your posts (the last id of the page before); "
            f"404 if it is not one of yours. Alone, it gives up to {MAX_PAGE_POSTS} posts."
        },
    )


class ListingHeadersSchema(RequestSchema):
    """The conditional request header of a listing."""

    if_none_match = fields.String(
        data_key="If-None-Match",
        metadata={
            "description": "ETags of copies you hold (compared weakly), or `*`: 304 while the listing is unchanged."
        },
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
