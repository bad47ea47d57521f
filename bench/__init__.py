"""Benchmark harness: wrk against the real service under gunicorn, with a bare-Flask ceiling in the same run."""
