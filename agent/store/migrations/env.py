"""Alembic's environment for the store, run programmatically (``agent/store/migrate.py``): the caller
hands over its open connection in ``config.attributes["connection"]`` — no alembic.ini, no URL here."""

from alembic import context

from agent.store.schema import Base

connection = context.config.attributes["connection"]
# Batch mode: SQLite alters a table by copying it, which Alembic only does in batch operations.
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
