"""Accounts and tokens: sign-up, sign-in, refresh."""
