"""Alembic migrations for the tillsight store."""
