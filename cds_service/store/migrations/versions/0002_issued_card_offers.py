"""What each issued card offered (suggestion uuids, override reasons), so feedback is bound to it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: cards recorded before this revision did not keep what they offered (not checked).
    with op.batch_alter_table("issued_cards") as batch:
        batch.add_column(sa.Column("suggestions", sa.Text, nullable=True))
        batch.add_column(sa.Column("override_reasons", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("issued_cards") as batch:
        batch.drop_column("override_reasons")
        batch.drop_column("suggestions")
