"""The HTTP side of a listing: If-None-Match in; ETag, caching headers, Link and a whole or streamed body out."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from flask import Response, request, url_for
from flask_smorest import abort
from marshmallow import ValidationError
from werkzeug.http import parse_etags

from blueprints.middleware.request_id import request_id
from blueprints.posts.schemas import ListingQuerySchema
from services.posts import Listing, ListingInterruptedError, ListingStream, Validators

log = logging.getLogger(__name__)

# The listing is private and changes with every add and delete, but it may be kept by the
# client if it asks again each time: `private` keeps it out of shared caches (proxies, CDNs),
# `no-cache` makes a browser revalidate every use with If-None-Match, so the user's own writes
# show at once (read-your-writes) and an unchanged listing costs a 304 with no database query
# (`no-store` would forbid keeping it, so no client could revalidate). `Vary: Authorization`: a
# copy is only for the same credentials (the tag is per user as well).
CACHE_CONTROL = "private, no-cache"
_QUERY = ListingQuerySchema()
VARY = "Authorization"

DOCUMENTED_HEADERS: dict[str, dict[str, Any]] = {
    "ETag": {
        "description": "Weak entity tag of this listing or page for this user; send it back in "
        "If-None-Match to get 304 while it is unchanged. Absent only on a listing over 512 KiB "
        "served while the cache is unavailable.",
        "schema": {"type": "string"},
    },
    "Cache-Control": {"description": "`private, no-cache`: revalidate before each use.", "schema": {"type": "string"}},
    "Vary": {"description": "`Authorization`.", "schema": {"type": "string"}},
}
LINK_HEADER: dict[str, dict[str, Any]] = {
    "Link": {
        "description": 'While older posts remain: `<...>; rel="next"`, the next page\'s URL (relative to '
        "this one: same path and limit, `before` = the last id of this page).",
        "schema": {"type": "string"},
    },
}


def listing_query() -> dict[str, Any]:
    """The listing's query parameters, validated by their schema only when any are sent (422 otherwise).

    Most listings send none: loading the schema for them would be a good part of a cached hit's cost.
    """
    if not request.args:
        return {}
    try:
        query: dict[str, Any] = _QUERY.load(request.args)
    except ValidationError as exc:
        abort(422, messages={"query": exc.messages})  # the shape flask-smorest's own arguments give
    return query


def validators(if_none_match: str) -> Validators:
    """An If-None-Match value: `W/"x"` and `"x"` name the same copy (weak comparison, RFC 9110 13.1.2)."""
    etags = parse_etags(if_none_match)
    return Validators(frozenset(etags.as_set(include_weak=True)), etags.star_tag)


def listing_response(listing: Listing, query: dict[str, Any]) -> Response:
    """200 with the body (buffered, or streamed in chunks) and its headers, or 304 with the headers alone."""
    headers = {"Cache-Control": CACHE_CONTROL, "Vary": VARY}
    if listing.tag is not None:
        headers["ETag"] = f'W/"{listing.tag}"'
    if listing.next_before is not None:
        # Relative (RFC 8288 resolves it against the request's URL): the host and scheme the
        # client used may differ from what this process sees behind a proxy.
        url = url_for(request.endpoint or "", **{**query, "before": listing.next_before})
        headers["Link"] = f'<{url}>; rel="next"'
    if listing.not_modified:
        return Response(status=304, headers=headers)
    if listing.stream is not None:
        return _streamed(listing.stream, headers)
    return Response(listing.body, mimetype="application/json", headers=headers)


def _streamed(stream: ListingStream, headers: dict[str, str]) -> Response:
    """A chunked response; the stream holds no database connection between its batches.

    The stream reads on connections of its own rather than the request's session, which Flask's
    teardown closes when the view returns, before the body is sent.
    """
    current_request = request_id()

    def chunks() -> Iterator[bytes]:
        try:
            yield from stream
        except ListingInterruptedError as error:
            # The status and headers are gone: raising makes the server drop the connection
            # without the last chunk, so the client sees a truncated body, not a short listing.
            log.error("%s: %s (request %s)", error, type(error.__cause__).__name__, current_request)
            raise

    return Response(chunks(), mimetype="application/json", headers=headers)
