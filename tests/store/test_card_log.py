"""Reliability of the feedback loop against real servers: concurrent writers, a restart, an outage."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

import pytest
import requests
from sqlalchemy import func, select
from support.builders import AS_OF, REFERRAL_URL, condition, feedback_entry, hook_body
from support.cli import spine_cds
from support.live_server import LiveServer
from support.postgres import PostgresServer, free_port

from cds_service.app import create_app
from cds_service.clock import utc_now
from cds_service.core.card_builder import FINDING_EXTENSION
from cds_service.store.card_log import issued_card
from cds_service.store.database import database_for
from cds_service.store.sql import insert_new_rows
from cds_service.store.tables import feedback, issued_cards

FEEDBACK_URL = REFERRAL_URL + "/feedback"
FIXTURE = "fhir_fixtures/01-osteoporotic-l1-mri"


def _count(url: str, table: Any) -> int:
    with database_for(url).engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(table)).scalar_one())


def _live(database_url: str, workers: int = 2) -> LiveServer:
    return LiveServer({"CDS_DATABASE_URL": database_url, "CDS_AUTH": "off"}, workers=workers).start()


def _fixture_request() -> dict[str, Any]:
    """A positive patient-view request whose dates are today's (the live server uses the real clock)."""
    result = spine_cds("request", FIXTURE)
    assert result.returncode == 0, result.stderr
    body: dict[str, Any] = json.loads(result.stdout)
    return body


def _card_uuid(thread: int, i: int) -> str:
    """Card uuids are UUIDs (feedback naming anything else is refused at once)."""
    return f"00000000-0000-4000-8000-{thread:04d}{i:08d}"


@pytest.fixture
def server(database_url: str) -> Iterator[LiveServer]:
    live = _live(database_url)
    yield live
    if live.process is not None:
        live.stop()


def test_8_threads_posting_500_entries_each_store_every_entry_exactly_once(
    server: LiveServer, database_url: str
) -> None:
    errors: list[str] = []
    issued = [  # feedback is accepted only on issued cards: these 4000 were, as the recorder writes them
        issued_card(
            {"uuid": _card_uuid(thread, i), "indicator": "info",
             "suggestions": [{"uuid": "s-" + _card_uuid(thread, i)}],
             "extension": {FINDING_EXTENSION: {"recommendation": "refer"}}},
            "vertebral-augmentation-referral",
            utc_now(),
        )
        for thread in range(8)
        for i in range(500)
    ]  # fmt: skip
    with database_for(database_url).engine.begin() as connection:
        insert_new_rows(connection, issued_cards, [asdict(card) for card in issued])

    def post(thread: int) -> None:
        entries = [feedback_entry(_card_uuid(thread, i)) for i in range(500)]
        with requests.Session() as session:
            for start in range(0, 500, 50):
                batch = {"feedback": entries[start : start + 50]}
                for _ in range(2):  # every batch twice: the repeat must change nothing
                    response = session.post(server.url + FEEDBACK_URL, json=batch, timeout=30)
                    if response.status_code != 200:
                        errors.append(f"{response.status_code} {response.text[:200]}")

    threads = [threading.Thread(target=post, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert _count(database_url, feedback) == 8 * 500
    with database_for(database_url).engine.connect() as connection:
        distinct = connection.execute(select(func.count(func.distinct(feedback.c.card_uuid)))).scalar_one()
    assert distinct == 8 * 500


def test_restart_loses_nothing(server: LiveServer, database_url: str) -> None:
    body = _fixture_request()
    uuids = []
    for _ in range(20):
        response = requests.post(server.url + REFERRAL_URL, json=body, timeout=10)
        assert response.status_code == 200
        uuids.append(response.json()["cards"][0])
    entries = [feedback_entry(c) for c in uuids[:12]] + [feedback_entry(c, "overridden") for c in uuids[12:]]
    assert (
        requests.post(server.url + FEEDBACK_URL, json={"feedback": entries}, timeout=10).json()["new"] == 20
    )
    server.stop()  # SIGTERM, as a process manager restarts a service
    assert _count(database_url, issued_cards) == 20  # queued cards were written before the workers left
    again = _live(database_url)
    try:
        repeat = requests.post(again.url + FEEDBACK_URL, json={"feedback": entries}, timeout=10)
        assert repeat.json() == {"received": 20, "new": 0}
    finally:
        again.stop()
    assert _count(database_url, feedback) == 20
    result = spine_cds("report", "--database-url", database_url)
    assert result.returncode == 0, result.stderr
    report = result.stdout
    print(report)  # the closing note of issue 8 quotes this output
    (service_line,) = [
        line for line in report.splitlines() if line.startswith("vertebral-augmentation-referral")
    ]
    assert service_line.split()[1:] == ["20", "20", "12", "8", "60.0%", "40.0%"]
    assert "already-referred" in report


def test_database_outage_hooks_answer_feedback_503_then_recovers(private_postgres: PostgresServer) -> None:
    url = private_postgres.create_database()
    app = create_app(clock=lambda: AS_OF, database_url=url, auth="off")
    client = app.test_client()
    body = hook_body([condition("fx", "M80.08XA")])
    private_postgres.stop()
    started = time.perf_counter()
    during = client.post(REFERRAL_URL, json=body)
    assert during.status_code == 200
    assert len(during.get_json()["cards"]) == 1
    assert time.perf_counter() - started < 1.0  # recording is off the hot path: no wait on the database
    refused = client.post(FEEDBACK_URL, json={"feedback": [feedback_entry(during.get_json()["cards"][0])]})
    assert refused.status_code == 503
    assert refused.get_json()["resourceType"] == "OperationOutcome"
    assert refused.headers["Retry-After"]
    private_postgres.start()
    accepted = client.post(FEEDBACK_URL, json={"feedback": [feedback_entry(during.get_json()["cards"][0])]})
    assert accepted.status_code == 200, accepted.get_data(as_text=True)
    recorder = app.extensions["cds"].recorder
    assert recorder.flush(timeout=20)
    assert _count(url, issued_cards) == 1  # the card shown during the outage was recorded afterwards


def test_app_starts_and_answers_hooks_when_the_database_is_away_at_start() -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing"
    app = create_app(clock=lambda: AS_OF, database_url=url, auth="off")
    client = app.test_client()
    assert (
        len(client.post(REFERRAL_URL, json=hook_body([condition("fx", "M80.08XA")])).get_json()["cards"]) == 1
    )
    assert client.post(FEEDBACK_URL, json={"feedback": [feedback_entry("c")]}).status_code == 503
    recorder = app.extensions["cds"].recorder
    recorder.give_up_retrying()
    assert recorder.flush()
    assert recorder.dropped == 1


def test_sqlite_replay_ids_live_in_a_file_of_their_own(tmp_path: Any) -> None:
    """The jti write of every authenticated call never waits behind card recording for SQLite's lock."""
    from cds_service.store.database import replay_database_for

    main = database_for(f"sqlite:///{tmp_path}/cds.sqlite")
    replay = replay_database_for(main)
    assert replay.url.endswith("/cds.replay.sqlite")
    assert replay_database_for(database_for("postgresql+psycopg://u@127.0.0.1:1/db")).url.endswith("/db")
