"""Issued cards, feedback entries and seen JWT ids.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "issued_cards",
        sa.Column("card_uuid", sa.String(64), primary_key=True),
        sa.Column("service_id", sa.String(128), nullable=False),
        sa.Column("recommendation", sa.String(64), nullable=False),
        sa.Column("indicator", sa.String(16), nullable=False),
        sa.Column("contraindications", sa.String(512), nullable=False),
        sa.Column("issued_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_issued_cards_issued_at", "issued_cards", ["issued_at"])
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("entry_hash", sa.String(64), nullable=False),
        sa.Column("service_id", sa.String(128), nullable=False),
        sa.Column("card_uuid", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("outcome_timestamp", sa.DateTime(), nullable=False),
        sa.Column("accepted_suggestions", sa.Text, nullable=False),
        sa.Column("override_system", sa.String(256)),
        sa.Column("override_code", sa.String(128)),
        sa.Column("override_display", sa.String(512)),
        sa.Column("user_comment", sa.Text),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("entry_hash", name="uq_feedback_entry_hash"),
    )
    op.create_index("ix_feedback_card_uuid", "feedback", ["card_uuid"])
    op.create_index("ix_feedback_outcome_timestamp", "feedback", ["outcome_timestamp"])
    op.create_table(
        "seen_jti",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_seen_jti_expires_at", "seen_jti", ["expires_at"])


def downgrade() -> None:
    op.drop_table("seen_jti")
    op.drop_table("feedback")
    op.drop_table("issued_cards")
