"""Errors repositories raise instead of leaking driver exceptions to services."""


class DuplicateEmailError(Exception):
    """The unique index on users.email_address refused an insert."""


class UnknownOwnerError(Exception):
    """A post named a user the users table no longer has (the account was deleted meanwhile)."""
