"""The replay check's insert on a driver connection (`insert_new_row_now`) stores exactly what the
SQLAlchemy insert stores (the purge compares its datetimes) and tells a new row from a duplicate."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select

from cds_service.store.database import Database
from cds_service.store.sql import insert_new_row, insert_new_row_now, insert_rows_now
from cds_service.store.tables import issued_cards, seen_jti


def _check(database: Database) -> None:
    assert database.ensure_schema()
    engine = database.engine
    now = datetime(2026, 12, 1, 12, 0, 0)  # no microseconds: stored with them, like SQLAlchemy does
    assert insert_new_row_now(engine, seen_jti, {"key": "a" * 64, "expires_at": now - timedelta(minutes=1)})
    assert not insert_new_row_now(engine, seen_jti, {"key": "a" * 64, "expires_at": now})
    with engine.begin() as connection:
        assert insert_new_row(
            connection, seen_jti, {"key": "b" * 64, "expires_at": now + timedelta(minutes=1)}
        )
        assert not insert_new_row(connection, seen_jti, {"key": "a" * 64, "expires_at": now})
    assert not insert_new_row_now(engine, seen_jti, {"key": "b" * 64, "expires_at": now})
    with engine.connect() as connection:
        stored = dict(connection.execute(select(seen_jti.c.key, seen_jti.c.expires_at)).all())
    assert stored == {"a" * 64: now - timedelta(minutes=1), "b" * 64: now + timedelta(minutes=1)}
    with engine.begin() as connection:  # the purge: only the expired row goes
        connection.execute(delete(seen_jti).where(seen_jti.c.expires_at < now))
    with engine.connect() as connection:
        assert [k for (k,) in connection.execute(select(seen_jti.c.key))] == ["b" * 64]


def test_the_driver_insert_matches_the_sqlalchemy_one(database_url: str) -> None:
    _check(Database(database_url))


def test_the_driver_batch_insert_skips_duplicates_and_stores_what_sqlalchemy_reads(database_url: str) -> None:
    database = Database(database_url)
    assert database.ensure_schema()
    when = datetime(2026, 12, 1, 9, 30)
    rows = [
        {
            "card_uuid": f"card-{n}",
            "service_id": "vertebral-augmentation-referral",
            "recommendation": "refer",
            "indicator": "info",
            "contraindications": "",
            "issued_at": when,
            "suggestions": None,
            "override_reasons": "[]",
        }
        for n in range(3)
    ]
    insert_rows_now(database.engine, issued_cards, rows[:2])
    insert_rows_now(database.engine, issued_cards, [{**rows[0], "indicator": "warning"}, rows[2]])
    with database.engine.connect() as connection:
        stored = connection.execute(select(issued_cards).order_by(issued_cards.c.card_uuid)).mappings().all()
    assert [dict(row) for row in stored] == rows  # the duplicate of card-0 changed nothing
