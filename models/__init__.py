"""Persistence models (SQLAlchemy tables) and the pydantic entities the layers exchange."""
