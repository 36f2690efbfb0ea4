"""Two service instances (separate gunicorn processes, 2 workers each) against one real PostgreSQL:
what one instance accepted is known to the other (replayed jti refused, feedback stored once), and
the analytics count the cards and feedback of both."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from support.builders import REFERRAL_URL, condition, feedback_entry, hook_body
from support.live_server import LiveServer
from support.postgres import PostgresServer
from support.tokens import BASE, Ehr, issuer_file

from cds_service.analytics.report import build_report
from cds_service.store.database import database_for

FEEDBACK_URL = REFERRAL_URL + "/feedback"
SERVICE = "vertebral-augmentation-referral"


@pytest.fixture
def instances(postgres: PostgresServer, tmp_path: Path) -> Iterator[tuple[LiveServer, LiveServer, str, Ehr]]:
    ehr = Ehr()
    url = postgres.create_database()
    env = {
        "CDS_DATABASE_URL": url,
        "CDS_AUTH": "jwt",
        "CDS_TRUSTED_ISSUERS": str(issuer_file(tmp_path, {"iss": ehr.iss, "jwks": ehr.jwks})),
        "CDS_PUBLIC_BASE_URL": BASE,  # both instances are one service behind one URL
    }
    first = LiveServer(env, workers=2).start()
    second = LiveServer(env, workers=2).start()
    try:
        yield first, second, url, ehr
    finally:
        for server in (first, second):
            if server.process is not None:
                server.stop()


def _post(server: LiveServer, path: str, token: str, body: Any) -> requests.Response:
    return requests.post(
        server.url + path, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


def test_two_instances_share_replay_refusal_feedback_and_analytics(
    instances: tuple[LiveServer, LiveServer, str, Ehr],
) -> None:
    first, second, url, ehr = instances
    onset = (datetime.now(UTC).date() - timedelta(days=5)).isoformat()
    body = hook_body([condition("fx", "M80.08XA", onset=onset)])

    token = ehr.token(BASE + REFERRAL_URL)
    assert _post(first, REFERRAL_URL, token, body).status_code == 200
    for _ in range(4):  # whichever worker of the other instance answers
        assert _post(second, REFERRAL_URL, token, body).status_code == 401
    assert _post(first, REFERRAL_URL, token, body).status_code == 401

    cards = {}
    for name, server in (("first", first), ("second", second)):
        for _ in range(3):
            answer = _post(server, REFERRAL_URL, ehr.token(BASE + REFERRAL_URL), body)
            assert answer.status_code == 200
            cards.setdefault(name, []).append(answer.json()["cards"][0])
    entries = {
        "feedback": [feedback_entry(cards["first"][0]), feedback_entry(cards["second"][0], "overridden")]
    }
    stored = [
        _post(server, FEEDBACK_URL, ehr.token(BASE + FEEDBACK_URL), entries).json()
        for server in (first, second)
    ]
    assert sorted(answer["new"] for answer in stored) == [0, 2]  # the same entries, stored once

    first.stop()  # workers write their queued cards as they stop
    second.stop()
    report = build_report(database_for(url))
    (service,) = [rates for rates in report.services if rates.key == SERVICE]
    assert (service.cards, service.accepted, service.overridden) == (7, 1, 1)  # 1 + 3 on one, 3 on the other
