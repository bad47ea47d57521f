# Posts API image: gunicorn serving wsgi:app with the settings in gunicorn.conf.py.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    # Use the image's Python 3.11; never download another one.
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy

# Pinned to the uv that wrote uv.lock, so `--frozen` reads it the same way.
RUN pip install --no-cache-dir uv==0.13.9

WORKDIR /app

# Dependencies first: this layer is rebuilt only when the lock changes, not on every code edit.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-cache

# The source (.dockerignore keeps out .venv, instance/, .env, caches and test output).
COPY . .

# Run as an unprivileged user. The code and the virtualenv stay root-owned and read-only to it;
# only instance/ (filesystem cache, development files) is writable.
RUN useradd --system --create-home --uid 10001 app \
    && mkdir -p /app/instance \
    && chown app:app /app/instance
USER app

EXPOSE 8000
# uv forwards SIGTERM to gunicorn, which drains requests for up to graceful_timeout.
CMD ["uv", "run", "--no-sync", "gunicorn", "wsgi:app"]
