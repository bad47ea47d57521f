"""Marshmallow schemas shared by every blueprint: the error shapes and the base request schema."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields


class RequestSchema(Schema):
    """Base of every request schema: unknown fields are dropped, never stored or used."""

    class Meta:
        """Drop unknown fields."""

        unknown = EXCLUDE


class ErrorSchema(Schema):
    """Every non-validation error: `{"error": "..."}`."""

    error = fields.String(required=True, metadata={"example": "A description of what went wrong"})


class ValidationErrorSchema(Schema):
    """A request that does not match its schema (422)."""

    status_code = fields.Integer(required=True, metadata={"example": 422})
    error = fields.String(required=True, metadata={"example": "Validation error"})
    extra = fields.List(
        fields.String(),
        required=True,
        metadata={"example": ["body.email_address: Missing data for required field."]},
    )
