"""The application factory: settings in, a fully wired Flask app out."""

from __future__ import annotations

import logging

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from blueprints import health, root
from blueprints.auth import routes as auth_routes
from blueprints.docs import SECURITY_SCHEMES
from blueprints.posts import routes as posts_routes
from commands import register_commands
from core.audit import init_audit_log
from core.body_limit import ChunkedBodyLimit, reject_oversized_body
from core.config import INSTANCE_DIR, MAX_BODY_BYTES, Settings, load_settings
from core.database import init_database
from core.errors import register_error_handlers
from core.extensions import api, cache, jwt
from core.headers import add_standard_headers
from core.json_provider import StrictJSONProvider
from core.listing_cache import init_listing_cache
from core.rate_limits import init_rate_limits
from core.readiness import init_readiness
from core.request_id import echo_request_id
from core.tokens import jwt_config
from core.wiring import PASSWORDS_KEY, SETTINGS_KEY
from services.passwords import Passwords
from serving.offload import offload

API_VERSION = "1.0.0"


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app from `settings` (default: the environment); refuses to start on bad config."""
    settings = settings or load_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app = Flask(__name__, instance_path=str(INSTANCE_DIR), static_url_path="/static")
    app.json = StrictJSONProvider(app)
    app.config.update(_flask_config(settings))
    app.config.update(jwt_config(settings))
    # Under gunicorn's gevent worker, hashing runs on a few native threads, not on the hub.
    app.extensions[PASSWORDS_KEY] = Passwords(run=offload())
    app.extensions[SETTINGS_KEY] = settings

    app.wsgi_app = ChunkedBodyLimit(app.wsgi_app, MAX_BODY_BYTES)  # type: ignore[method-assign]
    if settings.trusted_proxy_hops:
        # Only then is X-Forwarded-For believed (its last N hops): the client address keys the
        # per-address rate limit, so a header any client can send must not choose it.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.trusted_proxy_hops, x_proto=settings.trusted_proxy_hops
        )
    app.before_request(reject_oversized_body)
    app.after_request(add_standard_headers)
    app.after_request(echo_request_id)
    init_audit_log(app)
    init_database(app, settings)
    init_listing_cache(app, cache, settings)
    init_rate_limits(app, settings)
    init_readiness(app, settings)
    jwt.init_app(app)
    api.init_app(app)
    for blueprint in (root.blp, health.blp, auth_routes.blp, posts_routes.blp):
        api.register_blueprint(blueprint)
    register_error_handlers(app)
    register_commands(app)
    return app


def _flask_config(settings: Settings) -> dict[str, object]:
    return {
        "TESTING": settings.app_env == "testing",
        "MAX_CONTENT_LENGTH": MAX_BODY_BYTES,
        "API_TITLE": "Posts API",
        "API_VERSION": API_VERSION,
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/",
        "OPENAPI_JSON_PATH": "openapi.json",
        "OPENAPI_SWAGGER_UI_PATH": "docs",
        "OPENAPI_SWAGGER_UI_URL": "/static/vendor/swagger-ui/",
        "OPENAPI_SWAGGER_UI_CONFIG": {"persistAuthorization": True},
        "OPENAPI_REDOC_PATH": "redoc",
        "OPENAPI_REDOC_URL": "/static/vendor/redoc/redoc.standalone.js",
        "API_SPEC_OPTIONS": {
            "info": {"description": "Sign up, sign in, and keep your own text posts."},
            "components": {"securitySchemes": SECURITY_SCHEMES},
        },
    }
