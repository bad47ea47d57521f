"""Flask's JSON decoding on orjson: one strict, depth-limited parser for every request body."""

from __future__ import annotations

from typing import Any

import orjson
from flask.json.provider import DefaultJSONProvider


class StrictJSONProvider(DefaultJSONProvider):
    """Decodes with orjson, which rejects what the stdlib would let through or crash on.

    The stdlib parser raises RecursionError (a 500) on deeply nested input and accepts lone
    UTF-16 surrogates and NaN, which no database column can store. orjson refuses all of these
    with a JSONDecodeError, which the app reports as 422. Encoding stays Flask's default.
    """

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """Parse a JSON document; invalid, over-nested or non-UTF-8 input raises JSONDecodeError."""
        return orjson.loads(s)
