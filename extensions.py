"""The libraries' Flask extensions, one line each, created unbound and bound in `app.create_app`.

This service's own per-app objects (database, listing cache, ...) are in resources.py.
"""

from __future__ import annotations

from flask_caching import Cache
from flask_jwt_extended import JWTManager
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from cache import limits as limit_storages  # noqa: F401 - registers the limiter's posts-host:// and posts-redis:// storages

jwt = JWTManager()
cache = Cache()
# Per app: on/off and storage (RATELIMIT_* config; cache/limits.py). Fixed here: a moving window
# (no double burst at a window edge), no X-RateLimit-* headers (429 gets Retry-After from our
# handler), and, as a last resort if the storage itself fails, per-process memory counters
# instead of an error.
limiter = Limiter(
    get_remote_address,
    strategy="moving-window",
    headers_enabled=False,
    swallow_errors=True,
    in_memory_fallback_enabled=True,
    key_prefix="posts-api-limits",
)
