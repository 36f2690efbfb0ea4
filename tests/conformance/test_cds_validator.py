"""The strict CDS Hooks 2.0.1 validator (tests/support/cds_validator.py) itself: it accepts the
specification's own examples and refuses each rule broken on its own."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from support.cds_validator import (
    CHECKED,
    CdsHooksViolation,
    check_response,
    discovery_problems,
    feedback_problems,
    response_problems,
)

CARD_ID = "4e0a3a1e-3283-4575-ab82-028d55fe2719"
SUGGESTION_ID = "e56e1945-20b3-4393-8503-a1a20fd73152"


def valid_response() -> dict[str, Any]:
    """A response using every member of 2.0.1 (close to the specification's examples)."""
    return {
        "cards": [
            {
                "uuid": CARD_ID,
                "summary": "Example Card",
                "indicator": "info",
                "detail": "This is an **example** card.",
                "source": {
                    "label": "Static CDS Service Example",
                    "url": "https://example.com",
                    "icon": "https://example.com/img/icon-100px.png",
                    "topic": {"system": "http://example.org/topics", "code": "12345", "display": "Topic"},
                },
                "selectionBehavior": "at-most-one",
                "suggestions": [
                    {
                        "uuid": SUGGESTION_ID,
                        "label": "Order it",
                        "isRecommended": True,
                        "actions": [
                            {
                                "type": "create",
                                "description": "Create a request",
                                "resource": {"resourceType": "ServiceRequest", "status": "draft"},
                            },
                            {
                                "type": "delete",
                                "description": "Remove the inappropriate order",
                                "resourceId": "ServiceRequest/procedure-request-1",
                            },
                        ],
                    }
                ],
                "overrideReasons": [
                    {"system": "http://example.org/or", "code": "x", "display": "Patient refused"}
                ],
                "links": [
                    {"label": "Github", "url": "https://github.com", "type": "absolute"},
                    {
                        "label": "SMART Example App",
                        "url": "https://smart.example.com/launch",
                        "type": "smart",
                        "appContext": '{"session":3456356}',
                    },
                ],
                "extension": {"com.example.x": {"a": 1}},
            }
        ],
    }


def _card(r: dict[str, Any]) -> dict[str, Any]:
    card: dict[str, Any] = r["cards"][0]
    return card


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(r: dict[str, Any]) -> None:
        target: Any = _card(r)
        *parents, last = path.split(".")
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[int(last) if last.isdigit() else last] = value

    return mutate


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(r: dict[str, Any]) -> None:
        target: Any = _card(r)
        *parents, last = path.split(".")
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        del target[last]

    return mutate


def _two_recommended(r: dict[str, Any]) -> None:
    suggestions = _card(r)["suggestions"]
    suggestions.append({**copy.deepcopy(suggestions[0]), "uuid": "a7b8e4c2-0000-4000-8000-000000000001"})


def _duplicate_card(r: dict[str, Any]) -> None:
    twin = copy.deepcopy(_card(r))
    twin["suggestions"][0]["uuid"] = "a7b8e4c2-0000-4000-8000-000000000002"
    r["cards"].append(twin)


BROKEN: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("null member", _set("detail", None), "use-of-json"),
    ("empty string", _set("source.topic.display", ""), "use-of-json"),
    ("empty array deep inside", _set("extension", {"com.example.x": {"studies": []}}), "use-of-json"),
    ("empty object", _set("extension", {"com.example.x": {}}), "use-of-json"),
    ("null in a resource", _set("suggestions.0.actions.0.resource.note", None), "use-of-json"),
    ("no summary", _drop("summary"), "card-attributes"),
    ("summary of 140 characters", _set("summary", "x" * 140), "card-attributes"),
    ("indicator outside the enum", _set("indicator", "hard-stop"), "card-attributes"),
    ("no source", _drop("source"), "card-attributes"),
    ("source without label", _drop("source.label"), "source"),
    ("relative source url", _set("source.url", "/rationale"), "source"),
    ("topic is a string", _set("source.topic", "referral"), "source"),
    ("topic without system", _drop("source.topic.system"), "coding"),
    ("detail not a string", _set("detail", ["a"]), "card-attributes"),
    ("suggestions without selectionBehavior", _drop("selectionBehavior"), "cds-resp-6"),
    ("selectionBehavior outside the enum", _set("selectionBehavior", "all"), "card-attributes"),
    ("two recommended with at-most-one", _two_recommended, "cds-resp-1"),
    ("suggestion without label", _drop("suggestions.0.label"), "suggestion"),
    ("isRecommended not a boolean", _set("suggestions.0.isRecommended", "true"), "suggestion"),
    ("suggestion uuid not a uuid", _set("suggestions.0.uuid", "s-1"), "strict"),
    ("action type outside the enum", _set("suggestions.0.actions.0.type", "remove"), "action"),
    ("action without description", _drop("suggestions.0.actions.0.description"), "cds-resp-5"),
    ("create without resource", _drop("suggestions.0.actions.0.resource"), "action"),
    ("delete without resourceId", _drop("suggestions.0.actions.1.resourceId"), "cds-resp-2"),
    ("delete with a resource", _set("suggestions.0.actions.1.resource", {"resourceType": "X"}), "cds-resp-2"),
    (
        "delete with an absolute resourceId",
        _set("suggestions.0.actions.1.resourceId", "http://x/S/1"),
        "action",
    ),
    ("override reason without display", _drop("overrideReasons.0.display"), "cds-resp-4"),
    ("override reason without code", _drop("overrideReasons.0.code"), "coding"),
    ("link without type", _drop("links.0.type"), "link"),
    ("link type outside the enum", _set("links.0.type", "relative"), "link"),
    ("relative link url", _set("links.0.url", "github.com"), "link"),
    ("appContext on an absolute link", _set("links.0.appContext", "x"), "cds-resp-3"),
    ("extension not an object", _set("extension", ["x"]), "extensions"),
    ("unknown card member", _set("overrideReason", [{"code": "x"}]), "strict"),
    ("card uuid not a uuid", _set("uuid", "card-1"), "strict"),
    ("the same card twice", _duplicate_card, "strict"),
]


def test_the_reference_response_and_empty_cards_are_valid() -> None:
    assert response_problems(valid_response()) == []
    assert response_problems({"cards": []}) == []
    assert (
        response_problems({"cards": [{"summary": "s", "indicator": "info", "source": {"label": "l"}}]}) == []
    )


@pytest.mark.parametrize(("name", "mutate", "rule"), BROKEN, ids=[b[0] for b in BROKEN])
def test_each_broken_rule_is_reported(name: str, mutate: Callable[[dict[str, Any]], None], rule: str) -> None:
    response = valid_response()
    mutate(response)
    problems = response_problems(response)
    assert any(f"[{rule}]" in p for p in problems), problems


def test_check_response_raises_with_every_problem_and_counts_only_service_responses() -> None:
    response = valid_response()
    del _card(response)["selectionBehavior"]
    _card(response)["detail"] = None
    before = CHECKED.copy()
    try:
        with pytest.raises(CdsHooksViolation) as raised:
            check_response(response)
        rules = {p.split("[")[-1].split("]")[0] for p in raised.value.problems}
        assert rules == {"use-of-json", "card-attributes", "cds-resp-6"}
    finally:
        CHECKED.clear()
        CHECKED.update(before)  # synthetic documents are not counted as the service's responses


@pytest.mark.parametrize(
    "body",
    [{}, {"cards": None}, {"cards": {}}, [], {"cards": [], "systemActions": []}, {"cards": [], "x": 1}],
    ids=["no-cards", "null-cards", "cards-object", "not-an-object", "empty-system-actions", "unknown-member"],
)
def test_malformed_response_envelopes_are_reported(body: Any) -> None:
    assert response_problems(body)


def test_discovery_rules() -> None:
    good = {
        "services": [{"hook": "patient-view", "id": "a", "description": "d", "prefetch": {"p": "Patient/1"}}]
    }
    assert discovery_problems(good) == []
    assert discovery_problems({"services": [{"hook": "patient-view", "id": "a"}]})  # no description
    assert discovery_problems({"services": [good["services"][0], good["services"][0]]})  # id twice
    assert discovery_problems({"services": [{**good["services"][0], "prefetch": {}}]})  # empty object


FEEDBACK_OK = [
    {"card": CARD_ID, "outcome": "accepted", "acceptedSuggestions": [{"id": SUGGESTION_ID}],
     "outcomeTimestamp": "2020-12-11T00:00:00Z"},
    {"card": CARD_ID, "outcome": "overridden", "outcomeTimestamp": "2020-12-11T00:00:00Z"},
    {"card": CARD_ID, "outcome": "overridden", "outcomeTimestamp": "2020-12-11T00:00:00Z",
     "overrideReason": {"reason": {"code": "d7ecf885", "system": "https://example.com/or"},
                        "userComment": "clinician entered comment"}},
]  # fmt: skip


def test_the_specifications_feedback_examples_are_valid() -> None:
    assert feedback_problems({"feedback": FEEDBACK_OK}) == []


@pytest.mark.parametrize(
    ("entry", "rule"),
    [
        ({"card": CARD_ID, "outcome": "dismissed", "outcomeTimestamp": "2020-12-11T00:00:00Z"}, "cds-fb-1"),
        ({"card": CARD_ID, "outcome": "accepted", "outcomeTimestamp": "2020-12-11T00:00:00Z"}, "cds-fb-2"),
        ({"card": CARD_ID, "outcome": "overridden", "outcomeTimestamp": "2020-12-11T00:00:00Z",
          "overrideReason": {"note": "x"}}, "cds-fb-3"),
        ({"card": CARD_ID, "outcome": "overridden", "outcomeTimestamp": "2020-12-11T00:00:00"}, "feedback"),
        ({"outcome": "overridden", "outcomeTimestamp": "2020-12-11T00:00:00Z"}, "feedback"),
        ({"card": CARD_ID, "outcome": "accepted", "acceptedSuggestions": [],
          "outcomeTimestamp": "2020-12-11T00:00:00Z"}, "use-of-json"),
    ],
    ids=["outcome", "accepted-no-suggestions", "empty-override-reason", "not-utc", "no-card", "empty-array"],
)  # fmt: skip
def test_broken_feedback_is_reported(entry: dict[str, Any], rule: str) -> None:
    problems = feedback_problems({"feedback": [entry]})
    assert any(f"[{rule}]" in p for p in problems), problems
