"""Validating a CDS Hooks 2.0.1 feedback body: every bad entry is reported by index and field."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

MAX_ENTRIES = 1000
USER_COMMENT_CAP = 2000
"""A clinician's free text is kept up to this many characters (the rest is cut, never refused)."""
_LIMITS = {"card": 64, "id": 64, "system": 256, "code": 128, "display": 512, "userComment": 1_000_000}
_OUTCOMES = ("accepted", "overridden")


@dataclass(frozen=True)
class FeedbackEntry:
    card: str
    outcome: str
    outcome_timestamp: datetime
    """UTC, without tzinfo (the database stores naive UTC)."""
    accepted_suggestions: tuple[str, ...]
    override_system: str | None
    override_code: str | None
    override_display: str | None
    user_comment: str | None

    def key(self, service_id: str) -> str:
        """Identical entries for the same service share this key: repeats are stored once."""
        canonical = orjson.dumps(
            [
                service_id,
                self.card,
                self.outcome,
                self.outcome_timestamp.isoformat(),
                sorted(self.accepted_suggestions),
                self.override_system,
                self.override_code,
                self.override_display,
                self.user_comment,
            ]
        )
        return hashlib.sha256(canonical).hexdigest()


class InvalidFeedbackError(Exception):
    """The body or some entries are malformed; `issues` pairs a FHIRPath-like location with why."""

    def __init__(self, issues: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{where}: {why}" for where, why in issues))
        self.issues = issues


class _Entry:
    """Collects the problems of one entry instead of stopping at the first."""

    def __init__(self, where: str, issues: list[tuple[str, str]]) -> None:
        self.where = where
        self.issues = issues

    def bad(self, field: str, why: str) -> None:
        self.issues.append((f"{self.where}.{field}", why))

    def text(self, container: Mapping[str, Any], key: str, field: str, *, required: bool) -> str | None:
        value = container.get(key)
        if value is None:
            if required:
                self.bad(field, "is required")
            return None
        if not isinstance(value, str) or not value.strip():
            self.bad(field, "must be a non-empty string")
            return None
        if len(value) > _LIMITS[key]:
            self.bad(field, f"is longer than {_LIMITS[key]} characters")
            return None
        if "\x00" in value:
            self.bad(field, "must not contain NUL characters")
            return None
        return value


def _timestamp(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        try:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:
            return None
    return parsed


def _entry(raw: Any, index: int, issues: list[tuple[str, str]]) -> FeedbackEntry | None:
    entry = _Entry(f"feedback[{index}]", issues)
    before = len(issues)
    if not isinstance(raw, dict):
        entry.issues.append((entry.where, "must be an object"))
        return None
    card = entry.text(raw, "card", "card", required=True)
    outcome = raw.get("outcome")
    if outcome not in _OUTCOMES:
        entry.bad("outcome", "must be 'accepted' or 'overridden'")
    stamp_text = raw.get("outcomeTimestamp")
    stamp = _timestamp(stamp_text) if isinstance(stamp_text, str) and len(stamp_text) <= 64 else None
    if stamp is None:
        entry.bad("outcomeTimestamp", "is required: an ISO 8601 date-time")
    suggestions = _suggestions(raw.get("acceptedSuggestions"), outcome, entry)
    system = code = display = comment = None
    reason = raw.get("overrideReason")
    if reason is not None:
        if outcome != "overridden":
            entry.bad("overrideReason", "is only allowed when outcome is 'overridden'")
        elif not isinstance(reason, dict):
            entry.bad("overrideReason", "must be an object")
        else:
            coding = reason.get("reason")
            if coding is not None and not isinstance(coding, dict):
                entry.bad("overrideReason.reason", "must be a Coding")
            elif isinstance(coding, dict):
                system = entry.text(coding, "system", "overrideReason.reason.system", required=False)
                code = entry.text(coding, "code", "overrideReason.reason.code", required=True)
                display = entry.text(coding, "display", "overrideReason.reason.display", required=False)
            comment = entry.text(reason, "userComment", "overrideReason.userComment", required=False)
            comment = comment[:USER_COMMENT_CAP] if comment is not None else None
    if len(issues) > before or card is None or stamp is None:
        return None
    return FeedbackEntry(card, str(outcome), stamp, suggestions, system, code, display, comment)


def _suggestions(value: Any, outcome: Any, entry: _Entry) -> tuple[str, ...]:
    if value is None:
        if outcome == "accepted":
            entry.bad("acceptedSuggestions", "is required when outcome is 'accepted'")
        return ()
    if outcome == "overridden":
        entry.bad("acceptedSuggestions", "is only allowed when outcome is 'accepted'")
        return ()
    if not isinstance(value, list) or not value or len(value) > 100:
        entry.bad("acceptedSuggestions", "must be a list of 1 to 100 {id} objects")
        return ()
    ids: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            entry.bad(f"acceptedSuggestions[{i}]", "must be an object with an id")
            continue
        found = entry.text(item, "id", f"acceptedSuggestions[{i}].id", required=True)
        if found is not None:
            ids.append(found)
    return tuple(ids)


class IssuedCardView(Protocol):
    """What feedback is checked against: a card the service recorded when it answered."""

    @property
    def service_id(self) -> str: ...

    def suggestion_ids(self) -> frozenset[str] | None: ...

    def reason_codes(self) -> frozenset[tuple[str, str]] | None: ...


def unbound_issues(
    entries: Sequence[FeedbackEntry], service_id: str, issued: Mapping[str, IssuedCardView]
) -> list[tuple[str, str]]:
    """Entries that do not refer to what this service issued: the card (uuid, service), the
    accepted suggestions and the override reason must be the card's own. One issue per problem."""
    issues: list[tuple[str, str]] = []
    for index, entry in enumerate(entries):
        where = f"feedback[{index}]"
        card = issued.get(entry.card)
        if card is None or card.service_id != service_id:
            issues.append((f"{where}.card", "is not a card this CDS service issued"))
            continue
        offered = card.suggestion_ids()
        for i, suggestion in enumerate(entry.accepted_suggestions):
            if offered is not None and suggestion not in offered:
                issues.append((f"{where}.acceptedSuggestions[{i}].id", "is not a suggestion of this card"))
        reasons = card.reason_codes()
        if entry.override_code is not None and reasons is not None:
            codes = {code for _, code in reasons}
            if entry.override_code not in codes or (
                entry.override_system is not None
                and (entry.override_system, entry.override_code) not in reasons
            ):
                issues.append(
                    (
                        f"{where}.overrideReason.reason.code",
                        "is not one of the override reasons this card offered",
                    )
                )
    return issues


def parse_feedback(body: Any) -> list[FeedbackEntry]:
    """Every entry, or InvalidFeedbackError naming each bad one (nothing is stored then)."""
    if not isinstance(body, dict):
        raise InvalidFeedbackError([("", "request body must be a JSON object")])
    entries = body.get("feedback")
    if not isinstance(entries, list) or not entries:
        raise InvalidFeedbackError([("feedback", "is required: a non-empty list of feedback entries")])
    if len(entries) > MAX_ENTRIES:
        raise InvalidFeedbackError([("feedback", f"has more than {MAX_ENTRIES} entries")])
    issues: list[tuple[str, str]] = []
    parsed = [_entry(raw, index, issues) for index, raw in enumerate(entries)]
    if issues:
        raise InvalidFeedbackError(issues)
    return [entry for entry in parsed if entry is not None]
