"""The caller's own posts: add, list, delete."""
