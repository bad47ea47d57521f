"""Post rules: owners add, list and delete their own posts; listings are cached per user, streamed when large."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from cache.listing import VersionedListingCache
from models.entities import Post
from observability.tracing import span
from repositories.errors import UnknownOwnerError
from repositories.posts import PostRepository, PostRows
from services.errors import PostNotFoundError, TokenRevokedError, UnknownUserError
from services.sessions import SessionService

# A streamed listing is read and sent in batches of about this size (a single large post is one
# batch). Each batch is one SELECT on a connection returned before the batch is sent, so a client
# that stops reading holds no database connection, and a worker at most one batch of memory.
STREAM_BATCH_BYTES = 256 * 1024
# Rows per batch SELECT, adapted to the sizes seen so far, within these bounds.
MIN_BATCH_ROWS, MAX_BATCH_ROWS = 1, 1000
# A page stops early, before `limit` posts, once its body would pass this size (it always holds
# at least one post): so every page is buffered, sent with Content-Length and a correct Link,
# in at most this plus one post of memory. DynamoDB's Query caps a page at 1 MB the same way.
PAGE_MAX_BYTES = 1024 * 1024
# The largest `limit`; a page given only `before` holds up to this many posts.
MAX_PAGE_POSTS = 1000
# A whole listing of at most this many posts, each at most SMALL_POST long, is read in one buffered
# SELECT (at most about 100 x 8 KiB held) and answered whole (cached when it fits the cache's entry
# size); any other is read again as it is sent, streamed once past the entry size (ListingStream).
HEAD_POSTS = 100
SMALL_POST = 8 * 1024


@dataclass(frozen=True)
class Page:
    """Which part of a listing: all of it (the default), or up to `limit` posts older than `before`."""

    limit: int | None = None
    before: uuid.UUID | None = None

    @property
    def is_whole(self) -> bool:
        """True for the whole listing, the only part that is cached and may be streamed."""
        return self.limit is None and self.before is None


@dataclass(frozen=True)
class Validators:
    """What the client's If-None-Match holds: the tags of its copies (compared weakly), or `*`."""

    tags: frozenset[str] = frozenset()
    star: bool = False

    def current(self, tag: str | None) -> bool:
        """Whether a representation with this tag is one the client already has (`*`: any is)."""
        return self.star or (tag is not None and tag in self.tags)


NO_VALIDATORS = Validators()
WHOLE = Page()


class ListingInterruptedError(Exception):
    """A streamed listing failed after its headers were sent: the response can only be cut short."""

    def __init__(self, user_id: uuid.UUID, sent: int) -> None:
        super().__init__(f"listing of user {user_id} cut after {sent} bytes")
        self.sent = sent


class ListingStream:
    """The body of a listing too large to buffer: the encoded start, then the rest in keyset batches.

    Iterate once. Each batch reads the posts below the last one sent, in one SELECT whose
    connection goes back to the pool before the batch is yielded. Between batches the listing
    is not a snapshot: a post deleted meanwhile may be missing, one added meanwhile (newer than
    the start) never appears. A database error raises ListingInterruptedError (from that error).
    """

    def __init__(
        self, user_id: uuid.UUID, head: list[bytes], below: int, read: Callable[[int, int], PostRows] | None
    ) -> None:
        """`head` is the start already read, `below` the position of its last post; `read` None: that was all."""
        self._user_id = user_id
        self._head: list[bytes] | None = head
        self._below = below
        self._read = read
        self._count = _batch_rows(sum(map(len, head)), len(head))

    def __iter__(self) -> Iterator[bytes]:
        """The body in batches of about STREAM_BATCH_BYTES; the first is the buffered start."""
        head, self._head = self._head, None
        if head is None:
            raise RuntimeError("a listing stream can be read only once")
        first = b"[" + b",".join(head)
        del head  # the buffered start is not kept while the rest streams
        sent = len(first)
        yield first
        del first
        while self._read is not None:
            try:
                pieces, rows, more = self._next_batch(self._read)
            except Exception as error:
                raise ListingInterruptedError(self._user_id, sent) from error
            if pieces:
                batch = b"," + b",".join(pieces)
                del pieces
                sent += len(batch)
                yield batch
                del batch
            if not more:
                break
            self._count = _batch_rows(STREAM_BATCH_BYTES, rows)
        yield b"]"

    def _next_batch(self, read: Callable[[int, int], PostRows]) -> tuple[list[bytes], int, bool]:
        """The next batch's encoded posts, how many fit the batch size, and whether any may remain."""
        rows = read(self._below, self._count)
        pieces: list[bytes] = []
        size = 0
        try:
            for post in rows:
                piece = _encode(post)
                pieces.append(piece)
                size += len(piece) + 1
                if size >= STREAM_BATCH_BYTES:
                    break
        finally:
            rows.close()  # before the batch is sent: a stalled client holds no connection
        if rows.last_seq is not None:
            self._below = rows.last_seq
        full = size >= STREAM_BATCH_BYTES
        return pieces, len(pieces), full or len(pieces) == self._count


def _batch_rows(size: int, rows: int) -> int:
    """Rows for the next batch SELECT: about STREAM_BATCH_BYTES at the average size seen (`size` over `rows`)."""
    average = max(1, size // max(1, rows))
    return max(MIN_BATCH_ROWS, min(MAX_BATCH_ROWS, STREAM_BATCH_BYTES // average))


@dataclass(frozen=True)
class Listing:
    """The answer to a listing request.

    `tag` is the listing's entity tag (None only for a streamed listing while the cache is
    bypassed: its tag would need the whole body). The body is either `body` (whole, at most the
    cache's entry size or PAGE_MAX_BYTES plus a post) or `stream`; neither when the client's copy
    is current (304). `next_before` is the `before` of the next page while older posts remain.
    """

    tag: str | None
    body: bytes | None = None
    stream: ListingStream | None = None
    next_before: uuid.UUID | None = None

    @property
    def not_modified(self) -> bool:
        """True when the client's copy is current: answer 304 with no body."""
        return self.body is None and self.stream is None


class PostService:
    """Adds, lists and deletes a user's posts, keeping the listing cache coherent.

    A write may be given the session `generation` its token claims when the token check left
    that to the write (blueprints/auth/tokens.py): the write's own statement then checks it,
    and a session that ended first makes it TokenRevokedError with nothing changed.
    """

    def __init__(self, posts: PostRepository, cache: VersionedListingCache, sessions: SessionService) -> None:
        self._posts = posts
        self._cache = cache
        self._sessions = sessions

    def add(self, user_id: uuid.UUID, text: str, generation: int | None = None) -> uuid.UUID:
        """Store a post and invalidate the owner's listing before answering (read-your-writes)."""
        post_id = uuid.uuid4()
        try:
            stored = self._posts.add(user_id, post_id, text, datetime.now(UTC), generation)
        except UnknownOwnerError as exc:
            raise UnknownUserError(str(user_id)) from exc
        if not stored:
            raise TokenRevokedError(str(user_id))
        self._cache.invalidate(user_id)
        return post_id

    def delete(self, user_id: uuid.UUID, post_id: uuid.UUID, generation: int | None = None) -> None:
        """Delete one of the user's posts; someone else's post is reported as not found."""
        if not self._posts.delete_owned(user_id, post_id, generation):
            # Nothing matched: no such post of the user's, or (given a generation) a session that ended.
            if generation is not None and self._sessions.is_revoked(user_id, generation):
                raise TokenRevokedError(str(user_id))
            raise PostNotFoundError(str(post_id))
        self._cache.invalidate(user_id)

    def listing(self, user_id: uuid.UUID, page: Page = WHOLE, validators: Validators = NO_VALIDATORS) -> Listing:
        """The user's posts (or a page of them), newest first, encoded; from cache when fresh.

        The tag comes from the listing's version stamp, so a client whose copy is current gets
        its answer with no database query; when the cache is bypassed (version ""), from the body.
        PostNotFoundError when `page.before` is not one of the user's posts.
        """
        # The one read of the version stamp. Every write retires it, so it stands for the
        # listing's state. Read *before* the query: if a write lands in between, the version is
        # retired already, and the body stored (or the tag sent) under it is never matched again.
        version = self._cache.version(user_id)
        tag = _tag(user_id, page, b"v", version.encode()) if version else None
        if tag is not None and (tag in validators.tags or (validators.star and page.before is None)):
            return Listing(tag)  # not even the body is read
        if not page.is_whole:
            return self._page(user_id, page, tag, validators)
        with span("cache lookup") as lookup:
            cached = self._cache.body(user_id, version)
            lookup.set_attribute("cache.result", "bypass" if not version else "miss" if cached is None else "hit")
        if cached is not None:
            return Listing(tag, body=cached)
        return self._whole(user_id, version, tag, validators)

    def _whole(self, user_id: uuid.UUID, version: str, tag: str | None, validators: Validators) -> Listing:
        """The whole listing from the database: in one read when short, else streamed; cached when it fits."""
        head = self._posts.head_for_user(user_id, HEAD_POSTS + 1, SMALL_POST)
        if head is not None and len(head) <= HEAD_POSTS:
            body = orjson.dumps([{"id": post.id, "text": post.text, "created_at": post.created_at} for post in head])
            return self._buffered(user_id, version, tag, validators, body)
        return self._read_whole(user_id, version, tag, validators)

    def _buffered(
        self, user_id: uuid.UUID, version: str, tag: str | None, validators: Validators, body: bytes
    ) -> Listing:
        """A whole listing read into memory: cached (if it fits) under the version read *before* the query."""
        self._cache.put(user_id, version, body)
        listing = Listing(tag or _tag(user_id, WHOLE, b"b", body), body=body)
        return Listing(listing.tag) if validators.current(listing.tag) else listing

    def _read_whole(self, user_id: uuid.UUID, version: str, tag: str | None, validators: Validators) -> Listing:
        """A long listing, read as it is sent: buffered and cached if it fits the cache, else streamed."""
        rows = self._posts.stream_for_user(user_id)
        try:
            pieces, complete = _take(rows, self._cache.max_entry_bytes)
            # One row more tells a listing that only just passed the cache's size from a longer one.
            extra = None if complete else next(rows, None)
        finally:
            rows.close()
        if not complete:
            if extra is not None:
                pieces.append(_encode(extra))
            more = extra is not None and rows.last_seq is not None
            reader = self._posts.older_reader(user_id) if more else None
            listing = Listing(tag, stream=ListingStream(user_id, pieces, rows.last_seq or 0, reader))
            if validators.current(listing.tag):
                return Listing(listing.tag)
            return listing
        return self._buffered(user_id, version, tag, validators, b"[" + b",".join(pieces) + b"]")

    def _page(self, user_id: uuid.UUID, page: Page, tag: str | None, validators: Validators) -> Listing:
        """One page from the database (never cached: the cache holds whole listings)."""
        limit = page.limit or MAX_PAGE_POSTS
        # One more than the page, to learn whether older posts remain.
        rows = self._posts.page_for_user(user_id, page.before, limit + 1)
        if rows is None:
            raise PostNotFoundError(str(page.before))
        try:
            posts, more = _take_page(rows, limit)
        finally:
            rows.close()
        body = b"[" + b",".join(piece for piece, _ in posts) + b"]"
        tag = tag or _tag(user_id, page, b"b", body)
        if validators.current(tag):
            return Listing(tag)
        return Listing(tag, body=body, next_before=posts[-1][1] if more else None)


def _encode(post: Post) -> bytes:
    """One post as the listing encodes it: together, exactly `orjson.dumps(list of these objects)`."""
    return orjson.dumps({"id": post.id, "text": post.text, "created_at": post.created_at})


def _take(rows: PostRows, max_bytes: int) -> tuple[list[bytes], bool]:
    """Encode posts while the whole body would stay within max_bytes; True if that was all of them."""
    pieces: list[bytes] = []
    size = 2  # the brackets
    for post in rows:
        piece = _encode(post)
        pieces.append(piece)
        size += len(piece) + (1 if len(pieces) > 1 else 0)
        if size > max_bytes:
            return pieces, False
    return pieces, True


def _take_page(rows: PostRows, limit: int) -> tuple[list[tuple[bytes, uuid.UUID]], bool]:
    """Up to `limit` encoded posts (with their ids) within PAGE_MAX_BYTES; True if posts remain."""
    posts: list[tuple[bytes, uuid.UUID]] = []
    size = 2
    for post in rows:
        if len(posts) == limit:
            return posts, True
        piece = _encode(post)
        if posts and size + 1 + len(piece) > PAGE_MAX_BYTES:
            return posts, True
        posts.append((piece, post.id))
        size += len(piece) + (1 if len(posts) > 1 else 0)
    return posts, False


def _tag(user_id: uuid.UUID, page: Page, kind: bytes, stamp: bytes) -> str:
    """An entity tag for this user and page, from a version stamp (kind b"v") or a body (b"b")."""
    digest = hashlib.blake2b(f"{user_id}|{page.limit}|{page.before}|".encode() + kind, digest_size=16)
    digest.update(stamp)
    return digest.hexdigest()
