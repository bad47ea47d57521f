"""Observability: one log stream (JSON in production, readable in development), Prometheus metrics, traces.

The app factory calls `logs.init_logging`, `tracing.init_tracing` and `instrument.init_metrics`
once each; gunicorn.conf.py names `gunicorn_logger.GunicornLogger` and calls the hooks in
`gunicorn_hooks` and `tracing.shutdown_tracing`.
"""
