"""Turns the service layer's refusals into clear CLI errors (message on stderr, exit status 1)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from repositories.schema import UPGRADE_COMMAND, is_missing_schema, missing_schema_cause
from services.emails import InvalidEmailError
from services.errors import EmailTakenError, InvalidPasswordError, NoSuchAccountError


@contextmanager
def operator_errors() -> Iterator[None]:
    """Re-raise expected failures as click.ClickException with a one-line explanation."""
    try:
        yield
    except InvalidEmailError as exc:
        raise click.ClickException(f"invalid email address: {exc}") from exc
    except NoSuchAccountError as exc:
        raise click.ClickException(f"no account with email {exc}") from exc
    except EmailTakenError as exc:
        raise click.ClickException(f"an account with email {exc} already exists") from exc
    except InvalidPasswordError as exc:
        raise click.ClickException(f"invalid password: {exc}") from exc
    except (OperationalError, ProgrammingError) as exc:
        if not is_missing_schema(exc):
            raise click.ClickException(_database_unavailable(exc)) from exc
        raise click.ClickException(
            f"database schema not migrated ({missing_schema_cause(exc)}); run `{UPGRADE_COMMAND}` first"
        ) from exc
    except (DBAPIError, PoolTimeoutError) as exc:
        raise click.ClickException(_database_unavailable(exc)) from exc


def _database_unavailable(error: Exception) -> str:
    # The driver message may name hosts and users; the type is enough to act on.
    return f"database unavailable ({type(error).__name__}); check DATABASE_URL"
