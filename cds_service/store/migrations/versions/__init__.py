"""Migration scripts, oldest first (Alembic revision chain)."""
