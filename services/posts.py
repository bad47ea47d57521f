"""Post rules: owners add, list and delete their own posts; listings are cached per user."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import orjson

from cache.request_view import RequestCacheView
from models.entities import Post
from repositories.errors import UnknownOwnerError
from repositories.posts import PostRepository
from services.errors import PostNotFoundError, UnknownUserError


class PostService:
    """Adds, lists and deletes a user's posts, keeping the listing cache coherent."""

    def __init__(self, posts: PostRepository, cache: RequestCacheView) -> None:
        self._posts = posts
        self._cache = cache

    def add(self, user_id: uuid.UUID, text: str) -> uuid.UUID:
        """Store a post and invalidate the owner's listing before answering (read-your-writes)."""
        post_id = uuid.uuid4()
        try:
            self._posts.add(user_id, post_id, text, datetime.now(UTC))
        except UnknownOwnerError as exc:
            raise UnknownUserError(str(user_id)) from exc
        self._cache.invalidate(user_id)
        return post_id

    def delete(self, user_id: uuid.UUID, post_id: uuid.UUID) -> None:
        """Delete one of the user's posts; someone else's post is reported as not found."""
        if not self._posts.delete_owned(user_id, post_id):
            raise PostNotFoundError(str(post_id))
        self._cache.invalidate(user_id)

    def page(self, user_id: uuid.UUID, limit: int, before: uuid.UUID | None) -> tuple[bytes, uuid.UUID | None]:
        """One page of the user's posts, newest first, older than their post `before` if given.

        Returns the encoded page and, while older posts remain, the `before` of the next page.
        Pages come from the database, not the listing cache (which holds whole listings only).
        A `before` that is not one of the user's posts raises PostNotFoundError.
        """
        # One row more than asked tells whether another page follows, without a COUNT.
        posts = self._posts.list_page(user_id, limit + 1, before)
        if posts is None:
            raise PostNotFoundError(str(before))
        more = len(posts) > limit
        posts = posts[:limit]
        return encode_listing(posts), (posts[-1].id if more else None)

    def listing(self, user_id: uuid.UUID) -> bytes:
        """The user's posts, newest first, as the encoded response body, from cache when fresh."""
        version = self._cache.state(user_id).version
        body = self._cache.body(user_id, version)
        if body is None:
            body = encode_listing(self._posts.list_for_user(user_id))
            # Stored under the version read *before* the query: if a write happened since,
            # that version is already retired and this possibly stale body is never served.
            self._cache.put(user_id, version, body)
        return body


def encode_listing(posts: Sequence[Post]) -> bytes:
    """The JSON body of a listing (`[{"id", "text", "created_at"}]`), encoded once, then cached as bytes."""
    return orjson.dumps([{"id": post.id, "text": post.text, "created_at": post.created_at} for post in posts])
