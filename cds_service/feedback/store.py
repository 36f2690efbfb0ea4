"""Storing feedback entries durably: one transaction per request, repeats skipped by their key."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import orjson
from sqlalchemy.exc import SQLAlchemyError

from cds_service.feedback.request import FeedbackEntry
from cds_service.store.database import Database
from cds_service.store.sql import insert_new_rows
from cds_service.store.tables import feedback


class StorageUnavailableError(Exception):
    """The database cannot take the write now (the caller answers 503)."""


def save_feedback(
    database: Database, service_id: str, entries: Sequence[FeedbackEntry], received_at: datetime
) -> int:
    """Store the entries not stored before; returns how many were new."""
    rows = [
        {
            "entry_hash": entry.key(service_id),
            "service_id": service_id,
            "card_uuid": entry.card,
            "outcome": entry.outcome,
            "outcome_timestamp": entry.outcome_timestamp,
            "accepted_suggestions": orjson.dumps(list(entry.accepted_suggestions)).decode(),
            "override_system": entry.override_system,
            "override_code": entry.override_code,
            "override_display": entry.override_display,
            "user_comment": entry.user_comment,
            "received_at": received_at,
        }
        for entry in entries
    ]
    unique = list({row["entry_hash"]: row for row in rows}.values())
    if not database.ensure_schema():
        raise StorageUnavailableError("database schema unavailable")
    try:
        with database.engine.begin() as connection:
            return insert_new_rows(connection, feedback, unique)
    except SQLAlchemyError as error:
        raise StorageUnavailableError(type(error).__name__) from error
