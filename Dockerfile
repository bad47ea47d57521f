# Posts API image: gunicorn serving wsgi:app (`python -m serving`) with the settings in gunicorn.conf.py.
# Two stages: uv resolves the locked runtime dependencies in the first; the second holds the
# virtualenv and the service's code only (no uv, no dev tools, no tests, no benchmark).

# --- build: the locked runtime dependencies in /app/.venv -----------------------------------
FROM python:3.11-slim AS build
ENV UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/app/.venv
# Pinned to the uv that wrote uv.lock, so `--frozen` reads it the same way.
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /app
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-cache

# --- runtime ----------------------------------------------------------------------------------
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/app/.venv/bin:$PATH \
    APP_ENV=production
WORKDIR /app
# The same base image, so the virtualenv's interpreter path is valid here too.
COPY --from=build /app/.venv /app/.venv
# The service's code; .dockerignore keeps out tests/, bench/, .ci/, docs/, deploy/ and local state.
COPY . .
# Run as an unprivileged user. The code and the virtualenv stay root-owned and read-only to it;
# only instance/ (filesystem cache, development files) is writable.
RUN useradd --system --create-home --uid 10001 app \
    && mkdir -p /app/instance \
    && chown app:app /app/instance
USER app

EXPOSE 8000
# `python -m serving` checks the server settings, then runs gunicorn (gunicorn.conf.py), which
# drains requests for up to graceful_timeout on SIGTERM. The same image runs the
# migrations: `alembic upgrade head` (docker-compose.yml's migrate service).
CMD ["python", "-m", "serving"]
