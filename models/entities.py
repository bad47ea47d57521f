"""Pydantic entities: what repositories return and services work with."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict


class User(BaseModel):
    """An account as the rest of the service sees it (never with the password hash)."""

    model_config = ConfigDict(frozen=True)

    id: uuid.UUID
    email_address: str
    created_at: datetime
    updated_at: datetime


class Post(NamedTuple):
    """One post as listed to its owner.

    A plain tuple, not a pydantic model: a listing may hold thousands of rows that come from
    our own schema and are only encoded, so validating (or even constructing) a model per row
    would be most of a cache miss's cost.
    """

    id: uuid.UUID
    text: str
    created_at: datetime


class ResetToken(BaseModel):
    """A stored password reset token, as found by the hash of the token a client presents."""

    model_config = ConfigDict(frozen=True)

    user_id: uuid.UUID
    expires_at: datetime
    session_generation: int
