"""A strict CDS Hooks 2.0.1 validator for what the service sends (hook responses, discovery) and
what it is sent (feedback), written from the specification rather than from our own output.

Sources (HL7/cds-hooks, 2.0.1 text and its logical models):
- "Use of JSON": no element is `null` or empty ("", [], {}), except `cards: []` (no guidance).
- Card attributes: `summary` REQUIRED (< 140 characters), `indicator` REQUIRED (info | warning |
  critical), `source` REQUIRED; "If suggestions are present, selectionBehavior MUST also be
  provided" (cds-resp-6), values `at-most-one` | `any`; at most one recommended suggestion when
  `at-most-one` (cds-resp-1); `uuid`, `detail` strings.
- Source: `label` REQUIRED; `url`, `icon` absolute URLs; `topic` a Coding.
- Suggestion: `label` REQUIRED, `uuid` string, `isRecommended` boolean, `actions` array.
- Action: `type` REQUIRED (create | update | delete), `description` REQUIRED (cds-resp-5); create and
  update carry a FHIR `resource`; delete a relative `resourceId` and no resource (cds-resp-2).
- overrideReasons: Codings, each with `display` (cds-resp-4).
- Link: `label`, `url` (absolute), `type` (absolute | smart) REQUIRED; `appContext` only for smart
  links (cds-resp-3).
- Coding: `code` and `system` REQUIRED strings, `display` a string.
- Feedback: `card`, `outcome` (accepted | overridden, cds-fb-1), `outcomeTimestamp` REQUIRED;
  `acceptedSuggestions` REQUIRED when accepted (cds-fb-2), each `{id}`; `overrideReason` holds a
  `reason` Coding, a `userComment`, or both (cds-fb-3).
- `extension`: the value is a pre-coordinated JSON object.

Strict where the specification only implies: unknown members are reported (a typo such as
`overrideReason` on a card would otherwise pass), card and suggestion uuids must be UUIDs and unique
within a response (feedback refers to them), and a delete action must name its `resourceId`.

Every `check_*` call counts what it checked in `CHECKED`; the test session prints the totals.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

CHECKED: Counter[str] = Counter()
"""How many documents of each kind were validated in this process ("hook response", ...)."""

SUMMARY_MAX = 139  # "<140-character summary"
INDICATORS = ("info", "warning", "critical")
SELECTION_BEHAVIORS = ("at-most-one", "any")
ACTION_TYPES = ("create", "update", "delete")
LINK_TYPES = ("absolute", "smart")
OUTCOMES = ("accepted", "overridden")

_CARD_MEMBERS = {
    "uuid",
    "summary",
    "detail",
    "indicator",
    "source",
    "suggestions",
    "selectionBehavior",
    "overrideReasons",
    "links",
    "extension",
}
_SOURCE_MEMBERS = {"label", "url", "icon", "topic", "extension"}
_SUGGESTION_MEMBERS = {"label", "uuid", "isRecommended", "actions", "extension"}
_ACTION_MEMBERS = {"type", "description", "resource", "resourceId", "extension"}
_LINK_MEMBERS = {"label", "url", "type", "appContext", "extension"}
_CODING_MEMBERS = {"system", "code", "display"}
_RESPONSE_MEMBERS = {"cards", "systemActions", "extension"}
_SERVICE_MEMBERS = {"hook", "title", "description", "id", "prefetch", "usageRequirements", "extension"}
_FEEDBACK_MEMBERS = {
    "card",
    "outcome",
    "acceptedSuggestions",
    "overrideReason",
    "outcomeTimestamp",
    "extension",
}
_RELATIVE_REFERENCE = re.compile(r"^[A-Z][A-Za-z]+/[A-Za-z0-9\-.]{1,64}$")


class CdsHooksViolation(AssertionError):  # noqa: N818 (an assertion, as pytest reports it)
    """The document breaks the specification; `problems` lists every place and rule."""

    def __init__(self, kind: str, problems: list[str]) -> None:
        super().__init__(f"{kind} is not valid CDS Hooks 2.0.1:\n  " + "\n  ".join(problems))
        self.problems = problems


class _Checker:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def bad(self, where: str, rule: str, why: str) -> None:
        self.problems.append(f"{where or '$'}: [{rule}] {why}")

    # -- generic --------------------------------------------------------------------------------

    def no_null_or_empty(self, value: Any, where: str, *, empty_ok: frozenset[str] = frozenset()) -> None:
        """Use of JSON: no null, "", [] or {} anywhere (paths in `empty_ok` may be empty arrays)."""
        if value is None:
            self.bad(where, "use-of-json", "null is not allowed")
        elif isinstance(value, str):
            if value == "":
                self.bad(where, "use-of-json", "empty string is not allowed")
        elif isinstance(value, list):
            if not value and where not in empty_ok:
                self.bad(where, "use-of-json", "empty array is not allowed")
            for i, item in enumerate(value):
                self.no_null_or_empty(item, f"{where}[{i}]", empty_ok=empty_ok)
        elif isinstance(value, dict):
            if not value:
                self.bad(where, "use-of-json", "empty object is not allowed")
            for key, item in value.items():
                self.no_null_or_empty(item, f"{where}.{key}" if where else key, empty_ok=empty_ok)

    def members(self, obj: Mapping[str, Any], allowed: set[str], where: str, what: str) -> None:
        for key in obj:
            if key not in allowed:
                self.bad(f"{where}.{key}", "strict", f"{what} has no member '{key}' in CDS Hooks 2.0.1")

    def obj(self, value: Any, where: str, rule: str, what: str) -> Mapping[str, Any] | None:
        if not isinstance(value, dict):
            self.bad(where, rule, f"{what} must be a JSON object")
            return None
        return value

    def string(
        self, obj: Mapping[str, Any], key: str, where: str, rule: str, *, required: bool
    ) -> str | None:
        if key not in obj:
            if required:
                self.bad(f"{where}.{key}", rule, "is REQUIRED")
            return None
        value = obj[key]
        if not isinstance(value, str):
            self.bad(f"{where}.{key}", rule, "must be a string")
            return None
        return value

    def array(self, obj: Mapping[str, Any], key: str, where: str, rule: str) -> list[Any]:
        if key not in obj:
            return []
        value = obj[key]
        if not isinstance(value, list):
            self.bad(f"{where}.{key}", rule, "must be an array")
            return []
        return value

    def absolute_url(
        self, obj: Mapping[str, Any], key: str, where: str, rule: str, *, required: bool
    ) -> None:
        value = self.string(obj, key, where, rule, required=required)
        if value is None:
            return
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            self.bad(f"{where}.{key}", rule, "must be an absolute URL")

    def uuid_string(self, obj: Mapping[str, Any], key: str, where: str, rule: str) -> str | None:
        value = self.string(obj, key, where, rule, required=False)
        if value is None:
            return None
        try:
            uuid.UUID(value)
        except ValueError:
            self.bad(f"{where}.{key}", "strict", "must be a UUID (feedback refers to it)")
        return value

    def coding(self, value: Any, where: str, rule: str, *, display_required: bool) -> None:
        coding = self.obj(value, where, rule, "a Coding")
        if coding is None:
            return
        self.members(coding, _CODING_MEMBERS, where, "a Coding")
        self.string(coding, "code", where, "coding", required=True)
        self.string(coding, "system", where, "coding", required=True)
        self.string(
            coding, "display", where, rule if display_required else "coding", required=display_required
        )

    def extension(self, obj: Mapping[str, Any], where: str) -> None:
        if "extension" in obj and not isinstance(obj["extension"], dict):
            self.bad(f"{where}.extension", "extensions", "must be a pre-coordinated JSON object")

    # -- hook response ----------------------------------------------------------------------------

    def response(self, body: Any) -> None:
        top = self.obj(body, "", "cds-service-response", "the response")
        if top is None:
            return
        self.no_null_or_empty(top, "", empty_ok=frozenset({"cards"}))
        self.members(top, _RESPONSE_MEMBERS, "", "the response")
        if "cards" not in top:
            self.bad("cards", "cds-service-response", "is REQUIRED")
        card_ids: list[str] = []
        suggestion_ids: list[str] = []
        for i, card in enumerate(self.array(top, "cards", "", "cds-service-response")):
            self.card(card, f"cards[{i}]", card_ids, suggestion_ids)
        for i, action in enumerate(self.array(top, "systemActions", "", "cds-service-response")):
            self.action(action, f"systemActions[{i}]")
        for kind, ids in (("card", card_ids), ("suggestion", suggestion_ids)):
            for repeated in sorted(k for k, n in Counter(ids).items() if n > 1):
                self.bad("cards", "strict", f"{kind} uuid {repeated} is not unique in the response")
        self.extension(top, "")

    def card(self, value: Any, where: str, card_ids: list[str], suggestion_ids: list[str]) -> None:
        card = self.obj(value, where, "card-attributes", "a card")
        if card is None:
            return
        self.members(card, _CARD_MEMBERS, where, "a card")
        found = self.uuid_string(card, "uuid", where, "card-attributes")
        if found:
            card_ids.append(found)
        summary = self.string(card, "summary", where, "card-attributes", required=True)
        if summary is not None and len(summary) > SUMMARY_MAX:
            self.bad(f"{where}.summary", "card-attributes", f"is {len(summary)} characters; must be < 140")
        self.string(card, "detail", where, "card-attributes", required=False)
        indicator = self.string(card, "indicator", where, "card-attributes", required=True)
        if indicator is not None and indicator not in INDICATORS:
            self.bad(f"{where}.indicator", "card-attributes", f"'{indicator}' is not one of {INDICATORS}")
        if "source" not in card:
            self.bad(f"{where}.source", "card-attributes", "is REQUIRED")
        else:
            self.source(card["source"], f"{where}.source")
        suggestions = self.array(card, "suggestions", where, "card-attributes")
        behavior = self.string(card, "selectionBehavior", where, "card-attributes", required=False)
        if "suggestions" in card and "selectionBehavior" not in card:
            self.bad(f"{where}.selectionBehavior", "cds-resp-6", "is REQUIRED when suggestions are present")
        if behavior is not None and behavior not in SELECTION_BEHAVIORS:
            self.bad(
                f"{where}.selectionBehavior",
                "card-attributes",
                f"'{behavior}' is not one of {SELECTION_BEHAVIORS}",
            )
        for i, suggestion in enumerate(suggestions):
            self.suggestion(suggestion, f"{where}.suggestions[{i}]", suggestion_ids)
        recommended = [s for s in suggestions if isinstance(s, dict) and s.get("isRecommended") is True]
        if behavior == "at-most-one" and len(recommended) > 1:
            self.bad(
                f"{where}.suggestions", "cds-resp-1", "at-most-one allows at most one recommended suggestion"
            )
        for i, reason in enumerate(self.array(card, "overrideReasons", where, "card-attributes")):
            self.coding(reason, f"{where}.overrideReasons[{i}]", "cds-resp-4", display_required=True)
        for i, link in enumerate(self.array(card, "links", where, "card-attributes")):
            self.link(link, f"{where}.links[{i}]")
        self.extension(card, where)

    def source(self, value: Any, where: str) -> None:
        source = self.obj(value, where, "source", "source")
        if source is None:
            return
        self.members(source, _SOURCE_MEMBERS, where, "a source")
        self.string(source, "label", where, "source", required=True)
        self.absolute_url(source, "url", where, "source", required=False)
        self.absolute_url(source, "icon", where, "source", required=False)
        if "topic" in source:
            self.coding(source["topic"], f"{where}.topic", "source", display_required=False)
        self.extension(source, where)

    def suggestion(self, value: Any, where: str, suggestion_ids: list[str]) -> None:
        suggestion = self.obj(value, where, "suggestion", "a suggestion")
        if suggestion is None:
            return
        self.members(suggestion, _SUGGESTION_MEMBERS, where, "a suggestion")
        self.string(suggestion, "label", where, "suggestion", required=True)
        found = self.uuid_string(suggestion, "uuid", where, "suggestion")
        if found:
            suggestion_ids.append(found)
        if "isRecommended" in suggestion and not isinstance(suggestion["isRecommended"], bool):
            self.bad(f"{where}.isRecommended", "suggestion", "must be a boolean")
        for i, action in enumerate(self.array(suggestion, "actions", where, "suggestion")):
            self.action(action, f"{where}.actions[{i}]")
        self.extension(suggestion, where)

    def action(self, value: Any, where: str) -> None:
        action = self.obj(value, where, "action", "an action")
        if action is None:
            return
        self.members(action, _ACTION_MEMBERS, where, "an action")
        kind = self.string(action, "type", where, "action", required=True)
        if kind is not None and kind not in ACTION_TYPES:
            self.bad(f"{where}.type", "action", f"'{kind}' is not one of {ACTION_TYPES}")
        self.string(action, "description", where, "cds-resp-5", required=True)
        resource = action.get("resource")
        if kind in ("create", "update") and not (
            isinstance(resource, dict) and isinstance(resource.get("resourceType"), str)
        ):
            self.bad(f"{where}.resource", "action", f"a {kind} action SHALL carry a FHIR resource")
        if kind == "delete":
            if "resource" in action:
                self.bad(
                    f"{where}.resource", "cds-resp-2", "a delete action names resourceId, not a resource"
                )
            ref = self.string(action, "resourceId", where, "cds-resp-2", required=True)
            if ref is not None and not _RELATIVE_REFERENCE.fullmatch(ref):
                self.bad(f"{where}.resourceId", "action", "must be a relative reference (Type/id)")
        elif "resourceId" in action:
            self.string(action, "resourceId", where, "action", required=False)
        self.extension(action, where)

    def link(self, value: Any, where: str) -> None:
        link = self.obj(value, where, "link", "a link")
        if link is None:
            return
        self.members(link, _LINK_MEMBERS, where, "a link")
        self.string(link, "label", where, "link", required=True)
        self.absolute_url(link, "url", where, "link", required=True)
        kind = self.string(link, "type", where, "link", required=True)
        if kind is not None and kind not in LINK_TYPES:
            self.bad(f"{where}.type", "link", f"'{kind}' is not one of {LINK_TYPES}")
        self.string(link, "appContext", where, "link", required=False)
        if "appContext" in link and kind != "smart":
            self.bad(f"{where}.appContext", "cds-resp-3", "appContext is only for smart links")
        self.extension(link, where)

    # -- discovery --------------------------------------------------------------------------------

    def discovery(self, body: Any) -> None:
        top = self.obj(body, "", "discovery", "the discovery response")
        if top is None:
            return
        self.no_null_or_empty(top, "")
        if not isinstance(top.get("services"), list):
            self.bad("services", "discovery", "is REQUIRED: an array of CDS services")
            return
        ids: list[str] = []
        for i, value in enumerate(top["services"]):
            where = f"services[{i}]"
            service = self.obj(value, where, "discovery", "a service")
            if service is None:
                continue
            self.members(service, _SERVICE_MEMBERS, where, "a service")
            for key in ("hook", "description", "id"):
                self.string(service, key, where, "discovery", required=True)
            self.string(service, "title", where, "discovery", required=False)
            self.string(service, "usageRequirements", where, "discovery", required=False)
            if isinstance(service.get("id"), str):
                ids.append(service["id"])
            prefetch = service.get("prefetch", {})
            if not isinstance(prefetch, dict) or not all(isinstance(v, str) for v in prefetch.values()):
                self.bad(f"{where}.prefetch", "discovery", "must map keys to prefetch template strings")
        for repeated in sorted(k for k, n in Counter(ids).items() if n > 1):
            self.bad("services", "discovery", f"service id {repeated} is not unique")

    # -- feedback ---------------------------------------------------------------------------------

    def feedback(self, body: Any) -> None:
        top = self.obj(body, "", "feedback", "the feedback request")
        if top is None:
            return
        self.no_null_or_empty(top, "")
        entries = top.get("feedback")
        if not isinstance(entries, list):
            self.bad("feedback", "feedback", "is REQUIRED: an array of Feedback")
            return
        for i, value in enumerate(entries):
            where = f"feedback[{i}]"
            entry = self.obj(value, where, "feedback", "a feedback entry")
            if entry is None:
                continue
            self.members(entry, _FEEDBACK_MEMBERS, where, "a feedback entry")
            self.string(entry, "card", where, "feedback", required=True)
            outcome = self.string(entry, "outcome", where, "cds-fb-1", required=True)
            if outcome is not None and outcome not in OUTCOMES:
                self.bad(f"{where}.outcome", "cds-fb-1", f"'{outcome}' is not one of {OUTCOMES}")
            stamp = self.string(entry, "outcomeTimestamp", where, "feedback", required=True)
            if stamp is not None and not _utc_timestamp(stamp):
                self.bad(f"{where}.outcomeTimestamp", "feedback", "must be an ISO timestamp in UTC")
            if outcome == "accepted" and "acceptedSuggestions" not in entry:
                self.bad(f"{where}.acceptedSuggestions", "cds-fb-2", "is REQUIRED when outcome is accepted")
            for j, accepted in enumerate(self.array(entry, "acceptedSuggestions", where, "feedback")):
                item = self.obj(
                    accepted, f"{where}.acceptedSuggestions[{j}]", "feedback", "an AcceptedSuggestion"
                )
                if item is not None:
                    self.members(item, {"id"}, f"{where}.acceptedSuggestions[{j}]", "an AcceptedSuggestion")
                    self.string(item, "id", f"{where}.acceptedSuggestions[{j}]", "feedback", required=True)
            if "overrideReason" in entry:
                reason = self.obj(
                    entry["overrideReason"], f"{where}.overrideReason", "feedback", "an OverrideReason"
                )
                if reason is not None:
                    self.members(
                        reason, {"reason", "userComment"}, f"{where}.overrideReason", "an OverrideReason"
                    )
                    if "reason" not in reason and "userComment" not in reason:
                        self.bad(
                            f"{where}.overrideReason", "cds-fb-3", "needs a reason, a userComment, or both"
                        )
                    if "reason" in reason:
                        self.coding(
                            reason["reason"],
                            f"{where}.overrideReason.reason",
                            "feedback",
                            display_required=False,
                        )
                    self.string(reason, "userComment", f"{where}.overrideReason", "feedback", required=False)


def _utc_timestamp(text: str) -> bool:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return False
    return parsed.tzinfo is not None and parsed.utcoffset() is not None and "T" in text


def response_problems(body: Any) -> list[str]:
    checker = _Checker()
    checker.response(body)
    return checker.problems


def discovery_problems(body: Any) -> list[str]:
    checker = _Checker()
    checker.discovery(body)
    return checker.problems


def feedback_problems(body: Any) -> list[str]:
    checker = _Checker()
    checker.feedback(body)
    return checker.problems


def check_response(body: Any) -> None:
    """Raise CdsHooksViolation unless `body` is a valid CDS Hooks 2.0.1 hook response; counts it."""
    problems = response_problems(body)
    CHECKED["hook response"] += 1
    if isinstance(body, dict) and isinstance(body.get("cards"), list):
        CHECKED["card"] += len(body["cards"])
    if problems:
        raise CdsHooksViolation("hook response", problems)


def check_discovery(body: Any) -> None:
    problems = discovery_problems(body)
    CHECKED["discovery response"] += 1
    if problems:
        raise CdsHooksViolation("discovery response", problems)


def check_feedback(body: Any) -> None:
    problems = feedback_problems(body)
    CHECKED["feedback request"] += 1
    if problems:
        raise CdsHooksViolation("feedback request", problems)
