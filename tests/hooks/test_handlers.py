"""The handlers' own helpers."""

from __future__ import annotations

import uuid

from cds_service.hooks.handlers import _new_uuid


def test_card_uuids_are_random_version_4_uuids_in_canonical_form() -> None:
    made = [_new_uuid() for _ in range(2000)]
    assert len(set(made)) == len(made)
    for text in made:
        parsed = uuid.UUID(text)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == text  # lowercase, hyphenated 8-4-4-4-12
    # Every variant digit (8, 9, a, b) and every other hex digit occurs: the bits are not fixed.
    assert {t[19] for t in made} == set("89ab")
    assert set("".join(t[:8] for t in made)) == set("0123456789abcdef")


def test_the_log_counts_of_shell_and_reader_add_up() -> None:
    from collections import Counter

    from cds_service.core.record import PatientRecord
    from cds_service.hooks.handlers import _answer
    from cds_service.hooks.prefetch import RecordData

    shell = RecordData(skipped=Counter({"Condition pages-not-followed": 1, "shared": 2}))
    reader = PatientRecord(skipped=Counter({"Condition other-patient": 3, "shared": 1}))
    merged = _answer(None, None, shell, reader).counts["skipped"]
    assert merged == {"Condition pages-not-followed": 1, "Condition other-patient": 3, "shared": 3}
    assert type(merged) is dict
    assert shell.skipped == Counter({"Condition pages-not-followed": 1, "shared": 2})  # not changed
    assert _answer(None, None, RecordData(), PatientRecord()).counts["skipped"] == {}
