"""Storage: issued cards, feedback and seen JWT ids in one SQL database (SQLAlchemy 2 + Alembic)."""
