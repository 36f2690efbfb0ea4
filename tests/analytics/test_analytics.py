"""The analytics page and report: off unless configured, guarded by a token, same numbers as the CLI."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from support.builders import AS_OF, REFERRAL_URL, condition, feedback_entry, hook_body
from support.cli import spine_cds

from cds_service.app import create_app
from cds_service.store.card_log import CardRecorder, issued_card, recorded_cards
from cds_service.store.database import database_for

TOKEN = "analytics-secret-123"


def _app(tmp_path: Path, **overrides: Any) -> Flask:
    url = f"sqlite:///{tmp_path}/a.sqlite"
    return create_app(clock=lambda: AS_OF, database_url=url, auth="off", **overrides)


def _with_data(app: Flask) -> None:
    client = app.test_client()
    cards = [
        client.post(REFERRAL_URL, json=hook_body([condition("fx", "M80.08XA")])).get_json()["cards"][0]
        for _ in range(3)
    ]
    entries = [feedback_entry(cards[0]), feedback_entry(cards[1], "overridden")]
    assert client.post(REFERRAL_URL + "/feedback", json={"feedback": entries}).status_code == 200
    assert app.extensions["cds"].recorder.flush()


def test_analytics_is_off_without_a_token(tmp_path: Path) -> None:
    assert _app(tmp_path).test_client().get("/analytics").status_code == 404


@pytest.mark.parametrize(
    "header", [None, "Bearer wrong", "Basic " + base64.b64encode(b"x:wrong").decode(), "Basic !!!", "Token x"]
)
def test_analytics_refuses_without_the_token(tmp_path: Path, header: str | None) -> None:
    client = _app(tmp_path, analytics_token=TOKEN).test_client()
    response = client.get("/analytics", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert response.get_data() == b""


@pytest.mark.parametrize(
    "header", ["Bearer " + TOKEN, "Basic " + base64.b64encode(f"governance:{TOKEN}".encode()).decode()]
)
def test_analytics_page_shows_rates_reasons_and_a_chart(tmp_path: Path, header: str) -> None:
    app = _app(tmp_path, analytics_token=TOKEN)
    _with_data(app)
    response = app.test_client().get("/analytics", headers={"Authorization": header})
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "<svg" in page
    assert "already-referred" in page  # the card's first override reason
    assert "50.0%" in page  # one accepted, one overridden
    assert ">3<" in page  # three cards


def test_analytics_since_must_be_a_date(tmp_path: Path) -> None:
    client = _app(tmp_path, analytics_token=TOKEN).test_client()
    response = client.get("/analytics?since=soon", headers={"Authorization": "Bearer " + TOKEN})
    assert response.status_code == 400


def test_cli_report_since_and_db_upgrade(tmp_path: Path) -> None:
    app = _app(tmp_path)
    _with_data(app)
    url = f"sqlite:///{tmp_path}/a.sqlite"

    def cli(*args: str) -> str:
        result = spine_cds(*args)
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert "revision 0002" in cli("db", "upgrade", "--database-url", f"sqlite:///{tmp_path}/new.sqlite")
    everything = cli("report", "--database-url", url)
    assert "refer" in everything
    assert "50.0%" in everything
    future = cli("report", "--database-url", url, "--since", "2999-01-01")
    assert "since 2999-01-01" in future
    assert "50.0%" not in future


def test_recording_many_cards_off_the_hot_path_stores_every_one(tmp_path: Path) -> None:
    """Recording builds the row and enqueues it; the writer stores all of them. (Its cost per card
    is a benchmark line, `benchmarks/bench_patient_view.py`: speed is never a timed unit test.)"""
    card = create_app(clock=lambda: AS_OF, database_url="sqlite://", auth="off", record_cards=False)
    answer = card.test_client().post(REFERRAL_URL, json=hook_body([condition("fx", "M80.08XA")]))
    shown = answer.get_json()["cards"][0]
    assert issued_card(shown, "vertebral-augmentation-referral", AS_OF).recommendation == "refer"  # type: ignore[arg-type]
    recorder = CardRecorder(database_for(f"sqlite:///{tmp_path}/cost.sqlite"))
    runs = 2000
    for i in range(runs):
        recorder.record_card({**shown, "uuid": f"u{i}"}, "vertebral-augmentation-referral")
    assert recorder.flush()
    assert len(recorded_cards(recorder.database, [f"u{i}" for i in range(runs)])) == runs
