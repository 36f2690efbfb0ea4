"""CDS Hooks feedback: validation by entry and field, durable idempotent storage on both backends,
and cards recorded without patient data so that feedback joins to what was shown."""

from __future__ import annotations

import copy
import threading
from datetime import datetime
from typing import Any

import orjson
import pytest
from flask import Flask
from sqlalchemy import select
from support.builders import AS_OF, PATIENT_ID, REFERRAL_URL, condition, feedback_entry, hook_body
from support.cds_validator import check_feedback

from cds_service.analytics.report import build_report
from cds_service.app import create_app
from cds_service.feedback.request import USER_COMMENT_CAP, parse_feedback
from cds_service.feedback.store import save_feedback
from cds_service.runtime import Runtime
from cds_service.store.card_log import IssuedCard
from cds_service.store.tables import feedback, issued_cards

FEEDBACK_URL = REFERRAL_URL + "/feedback"
AS_OF_TIME = datetime(2026, 11, 23, 12, 0)
FRACTURE = condition("fx", "M80.08XA")
INFECTION = condition("inf", "M46.26", onset="2026-10-01")


def _app(database_url: str, **overrides: Any) -> Flask:
    return create_app(clock=lambda: AS_OF, database_url=database_url, auth="off", **overrides)


def _runtime(app: Flask) -> Runtime:
    found = app.extensions["cds"]
    assert isinstance(found, Runtime)
    return found


def _rows(app: Flask, table: Any) -> list[Any]:
    rt = _runtime(app)
    assert rt.database is not None
    with rt.database.engine.connect() as connection:
        return list(connection.execute(select(table)))


def _card(app: Flask, conditions: list[dict[str, Any]]) -> dict[str, Any]:
    response = app.test_client().post(REFERRAL_URL, json=hook_body(conditions))
    assert response.status_code == 200
    (card,) = response.get_json()["cards"]
    return card  # type: ignore[no-any-return]


def test_feedback_round_trip_joins_to_the_recorded_card(database_url: str) -> None:
    app = _app(database_url)
    refer = _card(app, [FRACTURE])
    contraindicated = _card(app, [FRACTURE, INFECTION])
    client = app.test_client()
    body = {"feedback": [feedback_entry(refer), feedback_entry(contraindicated, "overridden")]}
    check_feedback(body)
    response = client.post(FEEDBACK_URL, json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == {"received": 2, "new": 2}
    rt = _runtime(app)
    assert rt.recorder is not None
    assert rt.recorder.flush()
    cards = {row.card_uuid: row for row in _rows(app, issued_cards)}
    assert cards[refer["uuid"]].recommendation == "refer"
    assert cards[contraindicated["uuid"]].recommendation == "contraindicated"
    assert cards[contraindicated["uuid"]].contraindications == "infection"
    assert cards[refer["uuid"]].service_id == "vertebral-augmentation-referral"
    stored = {row.card_uuid: row for row in _rows(app, feedback)}
    assert stored[refer["uuid"]].outcome == "accepted"
    assert orjson.loads(stored[refer["uuid"]].accepted_suggestions) == [refer["suggestions"][0]["uuid"]]
    assert stored[contraindicated["uuid"]].override_code == contraindicated["overrideReasons"][0]["code"]
    assert rt.database is not None
    report = build_report(rt.database)
    by_recommendation = {r.key: r for r in report.recommendations}
    assert (by_recommendation["refer"].cards, by_recommendation["refer"].accepted) == (1, 1)
    assert by_recommendation["contraindicated"].override_rate == 1.0
    assert [(r.code, r.count) for r in report.reasons] == [(contraindicated["overrideReasons"][0]["code"], 1)]


def test_no_patient_identifier_is_stored(database_url: str) -> None:
    app = _app(database_url)
    body = hook_body([copy.deepcopy(FRACTURE)])  # changed below: not the shared FRACTURE
    body["context"]["patientId"] = "secret-patient-77"
    body["prefetch"]["patient"]["id"] = "secret-patient-77"
    body["prefetch"]["conditions"]["entry"][0]["resource"]["subject"]["reference"] = (
        "Patient/secret-patient-77"
    )
    card = app.test_client().post(REFERRAL_URL, json=body).get_json()["cards"][0]
    stored = app.test_client().post(FEEDBACK_URL, json={"feedback": [feedback_entry(card)]})
    assert stored.status_code == 200
    rt = _runtime(app)
    assert rt.recorder is not None
    assert rt.recorder.flush()
    dumped = repr(_rows(app, issued_cards)) + repr(_rows(app, feedback))
    assert card["uuid"] in dumped
    assert "secret-patient-77" not in dumped
    assert PATIENT_ID not in dumped.replace(card["uuid"], "")


def test_identical_entries_are_stored_once(database_url: str) -> None:
    app = _app(database_url)
    client = app.test_client()
    entry = feedback_entry(_card(app, [FRACTURE]))
    first = client.post(FEEDBACK_URL, json={"feedback": [entry, entry]})
    again = client.post(FEEDBACK_URL, json={"feedback": [entry]})
    later = client.post(
        FEEDBACK_URL, json={"feedback": [{**entry, "outcomeTimestamp": "2026-11-24T08:00:00Z"}]}
    )
    assert (first.status_code, again.status_code, later.status_code) == (200, 200, 200)
    assert first.get_json()["new"] == 1
    assert again.get_json() == {"received": 1, "new": 0}
    assert later.get_json()["new"] == 1
    assert len(_rows(app, feedback)) == 2


def test_feedback_must_name_a_card_this_service_issued(database_url: str) -> None:
    """Unknown card, a card of another service, a suggestion or override reason the card never
    offered: each refused with its own issue, and nothing of the request stored or counted."""
    app = _app(database_url)
    refer = _card(app, [FRACTURE])
    other = _card(app, [FRACTURE, INFECTION])
    foreign_reason = {"system": "http://example.org/override", "code": "patient-declined", "display": "x"}
    body = {
        "feedback": [
            feedback_entry(refer),  # good on its own
            feedback_entry("1b4e28ba-2fa1-11d2-883f-0016d3cca427"),  # never issued
            feedback_entry(refer, acceptedSuggestions=[{"id": "1b4e28ba-2fa1-11d2-883f-0016d3cca428"}]),
            feedback_entry(other, "overridden", overrideReason={"reason": foreign_reason}),
            feedback_entry(
                other,
                "overridden",
                overrideReason={"reason": {**other["overrideReasons"][0], "system": "urn:other"}},
            ),
        ]
    }
    check_feedback(body)  # valid CDS Hooks: only the binding to issued cards is wrong
    issues = _issues(app.test_client().post(FEEDBACK_URL, json=body))
    assert {where: why.split(": ", 1)[1] for where, why in issues.items()} == {
        "feedback[1].card": "is not a card this CDS service issued",
        "feedback[2].acceptedSuggestions[0].id": "is not a suggestion of this card",
        "feedback[3].overrideReason.reason.code": "is not one of the override reasons this card offered",
        "feedback[4].overrideReason.reason.code": "is not one of the override reasons this card offered",
    }
    order_sign = "/cds-services/vertebral-augmentation-order-sign/feedback"
    issues = _issues(app.test_client().post(order_sign, json={"feedback": [feedback_entry(refer)]}))
    assert list(issues) == ["feedback[0].card"]  # another service's card
    assert _rows(app, feedback) == []
    rt = _runtime(app)
    assert rt.database is not None
    assert build_report(rt.database).total.feedback == 0


def test_feedback_right_after_the_card_is_accepted_before_its_row_is_written(tmp_path: Any) -> None:
    """The race: the card is still on the recorder's queue (the writer is held back here)."""
    app = _app(f"sqlite:///{tmp_path}/race.sqlite")
    rt = _runtime(app)
    assert rt.recorder is not None
    release = threading.Event()
    write = rt.recorder._write

    def held_back(batch: list[IssuedCard]) -> None:
        release.wait(10)
        write(batch)

    rt.recorder._write = held_back  # type: ignore[method-assign]
    try:
        card = _card(app, [FRACTURE])
        assert rt.recorder.pending(card["uuid"]) is not None
        response = app.test_client().post(FEEDBACK_URL, json={"feedback": [feedback_entry(card)]})
        assert response.status_code == 200, response.get_data(as_text=True)
    finally:
        release.set()
    assert rt.recorder.flush()
    assert rt.recorder.pending(card["uuid"]) is None


def test_user_comment_is_stored_capped_and_never_logged(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    app = _app(f"sqlite:///{tmp_path}/c.sqlite")
    card = _card(app, [FRACTURE])
    comment = "Patient s01 prefers surgery-free care; spoke with daughter. " * 100  # 6000 characters
    entry = feedback_entry(card, "overridden")
    entry["overrideReason"]["userComment"] = comment
    response = app.test_client().post(FEEDBACK_URL, json={"feedback": [entry]})
    assert response.status_code == 200
    (row,) = _rows(app, feedback)
    assert row.user_comment == comment[:USER_COMMENT_CAP]
    captured = capsys.readouterr()
    assert "spoke with daughter" not in captured.err + captured.out


def test_unknown_service_is_404(tmp_path: Any) -> None:
    client = _app(f"sqlite:///{tmp_path}/s.sqlite").test_client()
    response = client.post("/cds-services/nope/feedback", json={"feedback": [feedback_entry("c")]})
    assert response.status_code == 404
    assert response.get_json()["resourceType"] == "OperationOutcome"


def _issues(response: Any) -> dict[str, str]:
    assert response.status_code == 400, response.get_data(as_text=True)
    body = response.get_json()
    assert body["resourceType"] == "OperationOutcome"
    return {issue.get("expression", [""])[0]: issue["diagnostics"] for issue in body["issue"]}


def test_bad_entries_are_listed_by_index_and_field_and_nothing_is_stored(tmp_path: Any) -> None:
    app = _app(f"sqlite:///{tmp_path}/s.sqlite")
    body = {
        "feedback": [
            feedback_entry("good"),
            {"card": "c2", "outcome": "maybe", "outcomeTimestamp": "yesterday"},
            feedback_entry("c3", acceptedSuggestions=None),
            feedback_entry("c4", "overridden", overrideReason={"reason": {"system": "s"}}),
            "not an object",
            {**feedback_entry("c6"), "card": 7},
        ]
    }
    issues = _issues(app.test_client().post(FEEDBACK_URL, json=body))
    assert set(issues) == {
        "feedback[1].outcome",
        "feedback[1].outcomeTimestamp",
        "feedback[2].acceptedSuggestions",
        "feedback[3].overrideReason.reason.code",
        "feedback[4]",
        "feedback[5].card",
    }
    assert "accepted" in issues["feedback[1].outcome"]
    assert _rows(app, feedback) == []


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({}, "feedback"),
        ({"feedback": []}, "feedback"),
        ({"feedback": {"card": "x"}}, "feedback"),
        (
            {"feedback": [feedback_entry("x", acceptedSuggestions=[{"id": 5}])]},
            "feedback[0].acceptedSuggestions[0].id",
        ),
        ({"feedback": [feedback_entry("x", acceptedSuggestions="s1")]}, "feedback[0].acceptedSuggestions"),
        (
            {"feedback": [feedback_entry("x", overrideReason={"reason": {"code": "c"}})]},
            "feedback[0].overrideReason",
        ),
        (
            {"feedback": [feedback_entry("x", "overridden", acceptedSuggestions=[{"id": "s"}])]},
            "feedback[0].acceptedSuggestions",
        ),
        (
            {"feedback": [feedback_entry("x", "overridden", overrideReason="no")]},
            "feedback[0].overrideReason",
        ),
        ({"feedback": [feedback_entry("x" * 65)]}, "feedback[0].card"),
        ({"feedback": [feedback_entry("a\x00b")]}, "feedback[0].card"),
        (
            {"feedback": [feedback_entry("x", outcomeTimestamp="2026-13-45T00:00:00Z")]},
            "feedback[0].outcomeTimestamp",
        ),
        ({"feedback": [feedback_entry("x", outcomeTimestamp=1700000000)]}, "feedback[0].outcomeTimestamp"),
        ({"feedback": [feedback_entry("x")] * 1001}, "feedback"),
    ],
)
def test_malformed_feedback_is_400(tmp_path: Any, body: dict[str, Any], where: str) -> None:
    client = _app(f"sqlite:///{tmp_path}/s.sqlite").test_client()
    assert where in _issues(client.post(FEEDBACK_URL, json=body))


def test_override_without_a_reason_is_accepted_and_ranked_as_no_reason(tmp_path: Any) -> None:
    app = _app(f"sqlite:///{tmp_path}/s.sqlite")
    card = _card(app, [FRACTURE])
    entry = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-23T10:00:00+01:00"}
    assert app.test_client().post(FEEDBACK_URL, json={"feedback": [entry]}).status_code == 200
    (row,) = _rows(app, feedback)
    assert row.outcome_timestamp.isoformat() == "2026-11-23T09:00:00"  # stored as UTC
    rt = _runtime(app)
    assert rt.database is not None
    assert rt.recorder is not None
    assert rt.recorder.flush()  # the report counts feedback on recorded cards only
    assert [r.code for r in build_report(rt.database).reasons] == ["(no reason given)"]


@pytest.mark.parametrize(
    ("data", "content_type"),
    [(b"{", "application/json"), (b"[]", "application/json"), (b'{"feedback": []}', "text/plain")],
)
def test_unreadable_bodies_are_400(tmp_path: Any, data: bytes, content_type: str) -> None:
    client = _app(f"sqlite:///{tmp_path}/s.sqlite").test_client()
    response = client.post(FEEDBACK_URL, data=data, content_type=content_type)
    assert response.status_code == 400
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_feedback_get_is_405(tmp_path: Any) -> None:
    response = _app(f"sqlite:///{tmp_path}/s.sqlite").test_client().get(FEEDBACK_URL)
    assert response.status_code == 405


def test_analytics_count_only_feedback_on_issued_cards(tmp_path: Any) -> None:
    """A row on a card never issued (stored before feedback was checked, or written by hand) is not
    counted; nor is one filed under another service than the card's."""
    app = _app(f"sqlite:///{tmp_path}/legacy.sqlite")
    card = _card(app, [FRACTURE])
    assert app.test_client().post(FEEDBACK_URL, json={"feedback": [feedback_entry(card)]}).status_code == 200
    rt = _runtime(app)
    assert rt.database is not None
    assert rt.recorder is not None
    assert rt.recorder.flush()
    stray = [
        parse_feedback({"feedback": [feedback_entry("1b4e28ba-2fa1-11d2-883f-0016d3cca427", "overridden")]}),
        parse_feedback({"feedback": [feedback_entry(card, "overridden")]}),
    ]
    save_feedback(rt.database, "vertebral-augmentation-referral", stray[0], AS_OF_TIME)
    save_feedback(rt.database, "vertebral-augmentation-order-sign", stray[1], AS_OF_TIME)
    assert len(_rows(app, feedback)) == 3
    report = build_report(rt.database)
    assert (report.total.accepted, report.total.overridden) == (1, 0)
    assert report.reasons == []
