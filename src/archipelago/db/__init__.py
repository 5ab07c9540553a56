"""Persistence: SQLAlchemy 2 models and Alembic migrations (SQLite embedded, PostgreSQL at scale)."""
