"""Business rules: accounts, passwords and posts. No Flask, no SQL."""
