"""The application factory: settings in, a fully wired Flask app out. Read it as the table of contents."""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from blueprints import health, root
from blueprints.audit import init_audit_log
from blueprints.auth import recovery as auth_recovery  # noqa: F401 - attaches its views to auth_routes.blp
from blueprints.auth import routes as auth_routes
from blueprints.auth.tokens import register_token_checks
from blueprints.errors import register_error_handlers
from blueprints.middleware.body_limit import ChunkedBodyLimit, reject_oversized_body
from blueprints.middleware.headers import add_standard_headers
from blueprints.middleware.json_provider import StrictJSONProvider
from blueprints.middleware.request_id import echo_request_id, request_id
from blueprints.openapi import api, openapi_config
from blueprints.posts import routes as posts_routes
from commands import register_commands
from config import INSTANCE_DIR, MAX_BODY_BYTES, Settings, flask_config, load_settings
from extensions import cache, jwt, limiter
from observability.instrument import init_metrics
from observability.logs import init_logging
from observability.tracing import init_tracing
from resources import init_resources, resources
from serving.offload import offload


def create_app(settings: Settings | None = None) -> Flask:
    """Build the app from `settings` (default: the environment); ConfigError on a bad configuration."""
    settings = settings or load_settings()
    app = Flask(
        __name__,
        instance_path=str(INSTANCE_DIR),
        static_folder="blueprints/static",
        template_folder="blueprints/templates",
    )
    configure(app, settings)
    register_extensions(app, settings)
    register_middleware(app, settings)
    register_blueprints(app)
    register_error_handlers(app, jwt)
    register_commands(app)
    return app


def configure(app: Flask, settings: Settings) -> None:
    """Flask and extension settings, strict JSON bodies, and the one log stream."""
    init_logging(settings, request_id)
    app.config.update(flask_config(settings))
    app.config.update(openapi_config())
    app.json = StrictJSONProvider(app)


def register_extensions(app: Flask, settings: Settings) -> None:
    """Bind every extension: the cache, this service's resources (resources.py), the limiter, JWT, OpenAPI."""
    cache.init_app(app)
    # Under the gevent worker hashes run on a few native threads (serving/offload.py).
    init_resources(app, settings, cache, offload())
    limiter.init_app(app)
    jwt.init_app(app)
    register_token_checks(jwt)
    api.init_app(app)


def register_middleware(app: Flask, settings: Settings) -> None:
    """What every request passes through: body limit, proxy headers, request ids, headers, audit, traces, metrics."""
    app.wsgi_app = ChunkedBodyLimit(app.wsgi_app, MAX_BODY_BYTES)  # type: ignore[method-assign]
    if settings.trusted_proxy_hops:
        # Only then is X-Forwarded-For believed (its last N hops): the client address keys the
        # per-address rate limit, so a header any client can send must not choose it.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.trusted_proxy_hops, x_proto=settings.trusted_proxy_hops
        )
    # Runs before the limiter's own before_request hook (bound above): the size is checked first.
    app.before_request_funcs.setdefault(None, []).insert(0, reject_oversized_body)
    app.after_request(add_standard_headers)
    app.after_request(echo_request_id)
    init_audit_log(app)
    # A server span per request and spans for the database, Redis and hashing, when an OTLP endpoint is set.
    init_tracing(app, settings, resources(app).engine, request_id)
    # Outermost, so a request's latency counts everything the app does for it.
    init_metrics(app, settings, resources(app).engine)


def register_blueprints(app: Flask) -> None:
    """One blueprint per resource, all documented in the OpenAPI document."""
    for blueprint in (root.blp, health.blp, auth_routes.blp, posts_routes.blp):
        api.register_blueprint(blueprint)
