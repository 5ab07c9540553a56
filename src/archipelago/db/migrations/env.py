"""Alembic environment: the connection comes from archipelago.db.session.migrate()."""

from alembic import context

from archipelago.db.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
