"""Flask's JSON on orjson: one strict, depth-limited parser for every request body, one compact encoder."""

from __future__ import annotations

from typing import Any

import orjson
from flask.json.provider import DefaultJSONProvider


class StrictJSONProvider(DefaultJSONProvider):
    """Decodes and encodes with orjson.

    Decoding: orjson rejects what the stdlib would let through or crash on. The stdlib parser
    raises RecursionError (a 500) on deeply nested input and accepts lone UTF-16 surrogates and
    NaN, which no database column can store. orjson refuses all of these with a
    JSONDecodeError, which the app reports as 422.
    Encoding: every body, success or error, is compact and keeps its keys in the order it was
    built (the contract's order, e.g. `status_code, error, extra`), not sorted.
    """

    sort_keys = False

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        """Compact JSON; Flask's indent and separator arguments are ignored (bodies are always compact).

        What orjson cannot encode (integers beyond 64 bits) falls back to the standard library.
        """
        try:
            return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS).decode()
        except TypeError:
            return super().dumps(obj, separators=(",", ":"))

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """Parse a JSON document; invalid, over-nested or non-UTF-8 input raises JSONDecodeError."""
        return orjson.loads(s)
