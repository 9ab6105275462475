"""The store: SQLAlchemy 2 Core tables, Alembic migrations and the writes that
turn engine decisions into rows, one transaction per batch of decisions."""
