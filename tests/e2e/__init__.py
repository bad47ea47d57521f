"""End-to-end tests: a real gunicorn, several workers, real HTTP."""
