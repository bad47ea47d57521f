"""Pydantic entities: what repositories return and services work with."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict


class User(BaseModel):
    """An account as the rest of the service sees it (never with the password hash)."""

    model_config = ConfigDict(frozen=True)

    id: uuid.UUID
    email_address: str
    created_at: datetime
    updated_at: datetime


class Post(BaseModel):
    """One post as listed to its owner."""

    model_config = ConfigDict(frozen=True)

    id: uuid.UUID
    text: str
    created_at: datetime
