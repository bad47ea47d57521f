"""Benchmark harness: wrk against our service under gunicorn (and a peer speaking the contract); stress scenarios."""
