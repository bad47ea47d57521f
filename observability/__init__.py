"""Observability: one log stream (JSON in production, readable in development) and Prometheus metrics.

The app factory calls `logs.init_logging` and `metrics.init_metrics` once each; gunicorn.conf.py
names `gunicorn_logger.GunicornLogger` and calls the hooks in `gunicorn_hooks`.
"""
