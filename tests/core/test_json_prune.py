"""core/json_prune: no null or empty member anywhere in what the service emits (CDS Hooks JSON)."""

from __future__ import annotations

from cds_service.core.json_prune import prune_empty


def test_empties_go_at_any_depth_and_values_stay() -> None:
    value = {
        "a": None,
        "b": "",
        "c": [],
        "d": {},
        "e": {"f": [None, "", {"g": []}], "h": 0, "i": False},
        "j": [[], {"k": None}, "x", 1],
        "l": "text",
    }
    assert prune_empty(value) == {"e": {"h": 0, "i": False}, "j": ["x", 1], "l": "text"}


def test_scalars_and_the_input_are_left_alone() -> None:
    value = {"a": {"b": None}}
    assert prune_empty(value) == {}
    assert value == {"a": {"b": None}}
    assert prune_empty(0) == 0
    assert prune_empty(None) is None
