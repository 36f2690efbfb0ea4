"""The tables, as SQLAlchemy Core metadata; Alembic migrations create them (never `create_all`).

No column holds a patient identifier: cards are recorded by their uuid and what they said.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Integer, MetaData, String, Table, Text, UniqueConstraint

metadata = MetaData()

issued_cards = Table(
    "issued_cards",
    metadata,
    Column("card_uuid", String(64), primary_key=True),
    Column("service_id", String(128), nullable=False),
    Column("recommendation", String(64), nullable=False),
    Column("indicator", String(16), nullable=False),
    Column("contraindications", String(512), nullable=False, default=""),
    Column("issued_at", DateTime(), nullable=False),
    Column("suggestions", Text),
    Column("override_reasons", Text),
    Index("ix_issued_cards_issued_at", "issued_at"),
)
"""One row per card answered; `contraindications` is the space-joined codes, sorted. `suggestions`
(JSON list of suggestion uuids) and `override_reasons` (JSON list of [system, code]) are what the
card offered, so feedback can be checked against it; NULL for cards recorded before migration 0002."""

feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("entry_hash", String(64), nullable=False),
    Column("service_id", String(128), nullable=False),
    Column("card_uuid", String(64), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("outcome_timestamp", DateTime(), nullable=False),
    Column("accepted_suggestions", Text, nullable=False, default="[]"),
    Column("override_system", String(256)),
    Column("override_code", String(128)),
    Column("override_display", String(512)),
    Column("user_comment", Text),
    Column("received_at", DateTime(), nullable=False),
    UniqueConstraint("entry_hash", name="uq_feedback_entry_hash"),
    Index("ix_feedback_card_uuid", "card_uuid"),
    Index("ix_feedback_outcome_timestamp", "outcome_timestamp"),
)
"""One row per distinct feedback entry: the hash of the canonical entry makes repeats no-ops."""

seen_jti = Table(
    "seen_jti",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("expires_at", DateTime(), nullable=False),
    Index("ix_seen_jti_expires_at", "expires_at"),
)
"""JWT ids already used (sha256 of issuer and jti), kept until the token expires: replay refusal
that holds across gunicorn workers and instances sharing the database."""
