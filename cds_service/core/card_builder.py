"""CDS Hooks cards from a decision: pure, given the card content and a uuid source.

Texts and one detail template per layout are data in `cards/` (LAYOUTS); values that come from the
record (code texts, study descriptions) are Markdown-escaped so that a record can never inject links
or HTML into the EHR's card.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any, Literal

import jinja2
import msgspec
import orjson

from cds_service.core.decision import OrderDecision, ReferralDecision
from cds_service.core.json_prune import prune_empty
from cds_service.core.record import SpineStudy
from cds_service.core.record.fhir_json import Coding
from cds_service.core.report_cards import (
    fracture_place,
    problem_list_suggestion,
    report_only,
    report_sentences,
)
from cds_service.core.rules.contraindications import Contraindication
from cds_service.core.rules.fractures import Fracture

FINDING_EXTENSION = "vertebral-augmentation-cds/finding"
SUMMARY_LIMIT = 139
# Only what Markdown would misread inside a line: backslash, code spans, emphasis, links and images,
# raw HTML / autolinks, "~~" strikethrough, entity references; "_" only at a word edge ("snake_case"
# never opens emphasis).
_MD_INLINE = re.compile(r"[\\`*\[\]<]|~(?=~)|(?<=~)~|(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])|&(?=#?[0-9A-Za-z]+;)")
# ... and what counts only at the start of a line: heading, quote, list item, setext underline.
_MD_LINE_START = re.compile(r"^(?:[#>+=-]|\d{1,9}[.)](?=\s|$))")
_BLANKS = re.compile(r"\s+")

CardJson = dict[str, Any]
Layout = Literal["refer", "contraindicated", "evaluate", "order-not-supported", "order-caution"]
LAYOUTS: tuple[Layout, ...] = ("refer", "contraindicated", "evaluate", "order-not-supported", "order-caution")
"""One detail template per layout, cards/<layout>.md.j2 (partials: cards/_*.md.j2)."""


def md_escape(text: object) -> str:
    """Record text as one inert line of Markdown that still reads as plain text.

    Escapes only what Markdown would otherwise read as markup, so "vertebra(e)" stays as written.
    """
    line = _MD_INLINE.sub(lambda m: "\\" + m.group(0), _BLANKS.sub(" ", str(text)).strip())
    return _MD_LINE_START.sub(lambda m: m.group(0)[:-1] + "\\" + m.group(0)[-1], line, count=1)


@dataclass(frozen=True)
class CardContent:
    texts: Mapping[str, Any]
    templates: Mapping[Layout, jinja2.Template]
    problem_codes: Mapping[str, Any] = field(default_factory=dict)
    """cards/problem-list-codes.json: the draft Condition's codes for a report-only fracture."""


_INCLUDE = re.compile(r'\{%\s*include\s+"(_[\w.-]+)"\s*%\}')
_OPENING_COMMENT = re.compile(r"\A\{#-.*?(-?)#\}", re.DOTALL)
_NOT_INLINED = re.compile(r"\{%-?\s*(?:extends|block|macro|set|import|from|include|raw)\b")


def _template_source(root: Traversable, name: str, *, inline: bool = True) -> str:
    """A card template's source, with each partial written in place of its `{% include %}`: an
    include looks the partial up and builds a new context on every render (about a quarter of
    the render), and in place the partial renders the same text (tests/core/test_card_layouts.py
    renders every fixture's card both ways)."""
    source = (root / name).read_text(encoding="utf-8")
    if not inline:
        return source
    return _INCLUDE.sub(lambda m: _partial_in_place(root, m.group(1)) or m.group(0), source)


def _partial_in_place(root: Traversable, name: str) -> str | None:
    """The partial as text to put in place of its include, or None when it would not render the
    same there. Rendered on its own a template loses one trailing newline (keep_trailing_newline
    off) and an opening `{#- ... -#}` strips the blanks after it; whitespace control at either end
    of what is left would reach into the including template, and assignments or blocks would
    change its scope: such partials stay included."""
    part = (root / name).read_text(encoding="utf-8")
    comment = _OPENING_COMMENT.match(part)
    if comment:
        part = part[comment.end() :]
        part = part.lstrip() if comment.group(1) else part
    part = part.removesuffix("\n")
    if (
        not part
        or part[0].isspace()
        or part[-1].isspace()
        or part.startswith(("{%-", "{{-", "{#-"))
        or part.endswith(("-%}", "-}}", "-#}"))
        or _NOT_INLINED.search(part)
    ):
        return None
    return part


def load_card_content(folder: Traversable | None = None, *, inline_partials: bool = True) -> CardContent:
    """Read texts and compile templates once, at app start."""
    root = folder if folder is not None else files("cds_service.cards")
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: _template_source(root, name, inline=inline_partials)),
        autoescape=False,
        keep_trailing_newline=False,
        undefined=jinja2.StrictUndefined,
        auto_reload=False,  # packaged data, read once
    )
    env.filters["md"] = md_escape
    return CardContent(
        texts=tomllib.loads((root / "texts.toml").read_text(encoding="utf-8")),
        templates={layout: env.get_template(f"{layout}.md.j2") for layout in LAYOUTS},
        problem_codes=orjson.loads((files("cds_service.cards") / "problem-list-codes.json").read_bytes()),
    )


def _truncate(text: str, limit: int = SUMMARY_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def fracture_phrase(fractures: tuple[Fracture, ...], texts: Mapping[str, Any]) -> str:
    """'osteoporotic L1 fracture', 'pathologic vertebral fractures (T12, L1)', ..."""
    etiologies = {f.etiology for f in fractures}
    etiology = texts["etiology"][etiologies.pop()] + " " if len(etiologies) == 1 else ""
    if len(fractures) == 1:
        f = fractures[0]
        where = f.level or (f"{f.region} vertebral" if f.region else "vertebral")
        return f"{etiology}{where} fracture"
    levels = ", ".join(fracture_place(f.level, f.region, texts) for f in fractures)
    return f"{etiology}vertebral fractures ({levels})"


def _study_phrase(studies: Iterable[SpineStudy]) -> str:
    parts = []
    for s in studies:
        modality = "/".join(sorted(s.modalities))
        details = ", ".join(x for x in (modality, s.started.isoformat() if s.started else "undated") if x)
        parts.append(f"{md_escape(s.label)} ({details})")
    return "; ".join(parts)


def _imaging_sentence(decision: ReferralDecision, texts: Mapping[str, Any]) -> str:
    t = texts["imaging"]
    if "ImagingStudy" in decision.unavailable:
        return str(t["unavailable"])
    imaging = decision.imaging
    if imaging.acuity_confirmed and imaging.acuity_studies:
        return str(t["acuity"]).format(studies=_study_phrase(imaging.acuity_studies))
    if imaging.acuity_confirmed:  # an MRI or bone-scan report said acute (§7)
        modalities, undated = texts["reports"]["modality"], texts["reports"]["undated"]
        found = {
            r.ref: f"{modalities.get(r.modality, r.modality)} report ({r.date or undated})"
            for f in decision.fractures
            for r in f.reports
            if r.ref in imaging.acuity_reports
        }
        return str(t["report_acuity"]).format(reports="; ".join(found.values()))
    sentence = str(t["no_acuity"])
    if imaging.studies:
        sentence += " " + str(t["other_studies"]).format(studies=_study_phrase(imaging.studies))
    return sentence


def _fracture_view(f: Fracture, texts: Mapping[str, Any]) -> dict[str, Any]:
    etiology = str(texts["etiology"][f.etiology]).capitalize()
    if f.level:
        where = f" {f.level} ({f.region})"
    else:
        region = str(texts["place"]["region"]).format(region=f.region) + ", " if f.region else ""
        where = f", {region}{texts['place']['level_unknown']}"
    labels = "; ".join(dict.fromkeys(s.label for s in f.sources))
    return {
        "title": f"{etiology} vertebral compression fracture{where}",
        "diagnosed_on": f.diagnosed_on.isoformat(),
        "age_days": f.age_days,
        "suspected": f.basis == "imaging-reason",
        "labels": labels,
    }


def _note_view(c: Contraindication, texts: Mapping[str, Any]) -> dict[str, Any]:
    note = texts["notes"][c.code]
    return {
        "kind_label": texts["kind"][c.kind],
        "title": note["title"],
        "action": note["action"],
        "labels": "; ".join(c.labels),
        "undated": c.undated,
    }


def _absolute_view(c: Contraindication, texts: Mapping[str, Any]) -> dict[str, str]:
    """An absolute contraindication as a contraindicated card's first line names it: title, then
    each record entry behind it with its date (escaped here: the evidence is record text)."""
    note = texts["notes"][c.code]
    undated = texts["contraindicated"]["undated"]
    dated = c.dated_labels or tuple((label, None) for label in c.labels)
    return {
        "title": note["title"],
        "action": note["action"],
        "evidence": "; ".join(
            f"{md_escape(label)} ({when.isoformat() if when else undated})" for label, when in dated
        ),
    }


def _unavailable_sentence(kinds: Iterable[str], texts: Mapping[str, Any]) -> str:
    names = texts["unavailable"]["kinds"]
    listed = sorted(kinds)
    return (
        texts["unavailable"]["text"].format(kinds=", ".join(names.get(k, k) for k in listed))
        if listed
        else ""
    )


def _card(
    summary: str,
    detail: str,
    indicator: str,
    texts: Mapping[str, Any],
    rationale_url: str,
    override_group: str,
    extension: dict[str, Any],
    new_uuid: Callable[[], str],
) -> CardJson:
    return {
        "uuid": new_uuid(),
        "summary": _truncate(summary[:1].upper() + summary[1:]),
        "detail": re.sub(r"\n{3,}", "\n\n", detail.strip()),
        "indicator": indicator,
        "source": {
            "label": texts["source"]["label"],
            "url": rationale_url,
            "topic": dict(texts["source"]["topic"]),
        },
        "overrideReasons": override_reasons(texts, override_group),
        "extension": {FINDING_EXTENSION: extension},  # `finding` is pruned of null / empty members
    }


def finding(decision: ReferralDecision, recommendation: str) -> dict[str, Any]:
    """The structured finding every card carries (api-contract.md revision 2)."""
    found: dict[str, Any] = prune_empty(
        {
            "recommendation": recommendation,
            "fractures": [
                {
                    "etiology": f.etiology,
                    "basis": f.basis,
                    "level": f.level,
                    "region": f.region,
                    "diagnosedOn": f.diagnosed_on.isoformat(),
                    "ageDays": f.age_days,
                    "evidence": list(f.evidence),
                    "report": _report_json(f),
                }
                for f in (decision.fractures or decision.reported)
            ],
            "imaging": {
                "acuityConfirmed": decision.imaging.acuity_confirmed,
                "studies": [s.ref for s in decision.imaging.studies],
            },
            "contraindications": [
                {"code": c.code, "kind": c.kind, "evidence": list(c.evidence)}
                for c in decision.contraindications
            ],
            "dataUnavailable": sorted(decision.unavailable),
            "unreadable": {k: v for k, v in sorted(decision.unreadable.items()) if v},
            "asOf": decision.as_of.isoformat(),
        }
    )
    return found


def _report_json(f: Fracture) -> dict[str, Any] | None:
    """The latest report finding of a fracture (api-contract.md revision 2); None without one."""
    if not f.reports:
        return None
    latest = f.reports[0]
    found: dict[str, Any] = {"status": latest.status, "modality": latest.modality}
    if latest.quote is not None:
        found["classification"] = latest.classification
    return found


def unreadable_sentence(unreadable: Mapping[str, int], texts: Mapping[str, Any]) -> str:
    """§1a: one line saying how many resources could not be read, so checks may be incomplete."""
    counts = {k: v for k, v in unreadable.items() if v}
    if not counts:
        return ""
    total = sum(counts.values())
    names = ", ".join(k if total == 1 else f"{k}: {v}" for k, v in sorted(counts.items()))
    key = "one" if total == 1 else "many"
    return str(texts["unreadable"][key]).format(count=total, types=names)


def override_reasons(texts: Mapping[str, Any], group: str) -> list[dict[str, str]]:
    """The dismissal reasons of one kind of card (group = recommendation; order hooks: "order-…"),
    so no card offers a reason that presumes something it does not suggest."""
    system = texts["override_reason_system"]["system"]
    return [
        {"system": system, "code": r["code"], "display": r["display"]}
        for r in texts["override_reasons"][group]
    ]


def coding_json(coding: Coding) -> dict[str, str]:
    """A Coding as FHIR JSON, members without a value left out."""
    return {k: v for k, v in msgspec.structs.asdict(coding).items() if isinstance(v, str) and v}


def _referral_request(
    decision: ReferralDecision, texts: Mapping[str, Any], patient_id: str, user_id: str | None
) -> dict[str, Any]:
    s = texts["suggestion"]
    request: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "proposal",
        "category": [{"coding": [dict(s["category"])]}],
        "code": {"coding": [dict(s["routing_code"]), dict(s["code"])], "text": s["code_text"]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "note": [{"text": s["note"]}],
    }
    by_note = s.get("performer_type_by_note", {})
    performer = next((by_note[c.code] for c in decision.contraindications if c.code in by_note), None)
    performer = performer or s.get("performer_type")
    if performer:
        request["performerType"] = {
            "coding": [dict(c) for c in performer["coding"]],
            "text": performer["text"],
        }
    open_fractures = decision.open_fractures
    condition_refs = sorted({ref for f in open_fractures for ref in f.condition_refs})
    if not condition_refs:  # a report-only fracture: the report is the reason (§7)
        condition_refs = sorted({r.ref for f in open_fractures for r in f.reports})
    if condition_refs:
        request["reasonReference"] = [{"reference": ref} for ref in condition_refs]
    else:
        codings = [coding_json(c) for f in open_fractures for src in f.sources for c in src.codings]
        request["reasonCode"] = [
            {"coding": list({(c.get("system"), c.get("code")): c for c in codings}.values())}
        ]
    support = sorted(
        {s.ref for f in decision.fractures for s in f.sources if s.basis == "imaging-reason"}
        | {s.ref for s in decision.imaging.studies}
    )
    if support:
        request["supportingInfo"] = [{"reference": ref} for ref in support]
    if user_id and user_id.split("/", 1)[0] in ("Practitioner", "PractitionerRole"):
        request["requester"] = {"reference": user_id}
    return request


def referral_card(
    decision: ReferralDecision,
    content: CardContent,
    *,
    patient_id: str,
    user_id: str | None,
    rationale_url: str,
    new_uuid: Callable[[], str],
    level_coding: Callable[[str], tuple[str, str] | None] | None = None,
) -> CardJson | None:
    """The one patient-view card, or None when there is nothing to say. `level_coding` (the value
    sets' vertebra codes) enables the problem-list suggestion for report-only fractures."""
    recommendation = decision.recommendation
    if recommendation is None:
        return None
    if recommendation == "evaluate":
        return _evaluate_card(
            decision,
            content,
            patient_id=patient_id,
            rationale_url=rationale_url,
            new_uuid=new_uuid,
            level_coding=level_coding,
        )
    texts = content.texts
    fractures = decision.fractures
    phrase = fracture_phrase(fractures, texts)
    age = min(f.age_days for f in fractures)
    if recommendation == "contraindicated":
        reasons = ", ".join(c.code for c in decision.absolute)
        summary = texts["summary"]["contraindicated"].format(fracture=phrase, reasons=reasons)
    elif any(c.warning for c in decision.contraindications):
        summary = texts["summary"]["refer_warning"].format(fracture=phrase, age=age)
    elif all(f.basis == "imaging-reason" for f in fractures):
        summary = texts["summary"]["refer_suspected"].format(fracture=phrase, age=age)
    elif all(f.basis == "imaging-report" for f in fractures):
        summary = texts["summary"]["refer_report"].format(fracture=phrase, age=age)
    else:
        summary = texts["summary"]["refer"].format(fracture=phrase, age=age)
    unavailable = " ".join(
        x
        for x in (
            # A refer card's imaging line already says when imaging was unavailable.
            _unavailable_sentence(
                decision.unavailable - ({"ImagingStudy"} if recommendation == "refer" else set()), texts
            ),
            unreadable_sentence(decision.unreadable, texts),
        )
        if x
    )
    common = dict(
        t=texts,
        decision=decision,
        recommendation=recommendation,
        fractures=[_fracture_view(f, texts) for f in fractures],
        unavailable=unavailable,
        addressed=texts["augmentation"]["addressed"].format(
            items="; ".join(
                f"{fracture_place(f.level, f.region, texts)} ({md_escape(a.label)}, {a.date})"
                for f, a in decision.addressed_fractures
            )
        )
        if decision.addressed_fractures
        else "",
        undated_augmentation=texts["augmentation"]["undated"].format(
            labels="; ".join(md_escape(a.label) for a in decision.undated_augmentation)
        )
        if decision.undated_augmentation
        else "",
    )
    if recommendation == "contraindicated":
        detail = content.templates["contraindicated"].render(
            **common,
            absolutes=[_absolute_view(c, texts) for c in decision.absolute],
            statement=texts["contraindicated"]["text"],
            orders="",
            notes=[_note_view(c, texts) for c in decision.contraindications if c.kind != "absolute"],
        )
    else:
        detail = content.templates["refer"].render(
            **common,
            imaging=_imaging_sentence(decision, texts),
            timing=texts["timing"]["text"].format(
                recent_days=decision.recent_days, days_left=max(0, decision.recent_days - age)
            ),
            notes=[_note_view(c, texts) for c in decision.contraindications],
        )
    sentences = report_sentences(fractures, decision.uncertain, texts, md_escape)
    if sentences:
        detail = detail.rstrip() + "\n\n" + "\n".join(f"- {line}" for line in sentences)
    card = _card(
        summary,
        detail,
        "warning" if decision.needs_warning else "info",
        texts,
        rationale_url,
        recommendation,
        finding(decision, recommendation),
        new_uuid,
    )
    suggestions: list[dict[str, Any]] = []
    if recommendation == "refer":
        label = texts["suggestion"]["label"]
        suggestions = [
            {
                "uuid": new_uuid(),
                "label": label,
                "isRecommended": True,
                "actions": [
                    {
                        "type": "create",
                        "description": label,
                        "resource": _referral_request(decision, texts, patient_id, user_id),
                    }
                ],
            }
        ]
    unlisted = report_only(decision.open_fractures)
    if unlisted and level_coding is not None:
        # The fracture is real whatever the procedure's fate: offered on a contraindicated card too.
        suggestions.append(
            problem_list_suggestion(
                unlisted,
                texts,
                content.problem_codes,
                patient_id=patient_id,
                level_coding=level_coding,
                new_uuid=new_uuid,
            )
        )
    if suggestions:
        card["selectionBehavior"] = "any" if len(suggestions) > 1 else "at-most-one"
        card["suggestions"] = suggestions
    return card


def _evaluate_card(
    decision: ReferralDecision,
    content: CardContent,
    *,
    patient_id: str,
    rationale_url: str,
    new_uuid: Callable[[], str],
    level_coding: Callable[[str], tuple[str, str] | None] | None,
) -> CardJson:
    """§7: a fracture reported with no sign of age and not on the problem list: evaluate, never refer."""
    texts = content.texts
    reported = decision.reported
    detail = content.templates["evaluate"].render(
        t=texts,
        fractures=[_fracture_view(f, texts) for f in reported],
        sentences=report_sentences(reported, decision.uncertain, texts, md_escape),
        unavailable=unreadable_sentence(decision.unreadable, texts),
    )
    card = _card(
        texts["summary"]["evaluate"].format(fracture=fracture_phrase(reported, texts)),
        detail,
        "info",
        texts,
        rationale_url,
        "evaluate",
        finding(decision, "evaluate"),
        new_uuid,
    )
    if level_coding is not None:
        card["selectionBehavior"] = "at-most-one"
        card["suggestions"] = [
            problem_list_suggestion(
                reported,
                texts,
                content.problem_codes,
                patient_id=patient_id,
                level_coding=level_coding,
                new_uuid=new_uuid,
            )
        ]
    return card


def order_card(
    order_decision: OrderDecision,
    content: CardContent,
    *,
    rationale_url: str,
    new_uuid: Callable[[], str],
) -> CardJson | None:
    """The one order-hook card, or None when the record raises nothing against the order."""
    recommendation = order_decision.recommendation
    orders = order_decision.orders
    decision = order_decision.record
    if recommendation is None or not orders:
        return None
    texts = content.texts
    order_texts = texts["order"]
    old_fracture = ""
    if recommendation == "order-not-supported":
        past = decision.latest_past_fracture
        age = (decision.as_of - past.date).days if past is not None and past.date is not None else None
        if past is not None and past.date is not None:
            region = str(texts["place"]["region"]).format(region=past.region) if past.region else None
            where = fracture_place(past.level, region, texts)
            old_fracture = order_texts["text"]["old_fracture"].format(
                where=where, date=past.date.isoformat(), age=age, days=decision.recent_days
            )
            summary = order_texts["summary"]["order-not-supported-old"].format(age=age)
        else:
            summary = order_texts["summary"]["order-not-supported"]
    elif recommendation == "contraindicated":
        summary = order_texts["summary"]["contraindicated"].format(
            reasons=", ".join(c.code for c in decision.absolute)
        )
    else:
        summary = order_texts["summary"]["order-caution"].format(
            codes=", ".join(c.code for c in decision.contraindications)
        )
    common = dict(
        t=texts,
        decision=decision,
        recommendation=recommendation,
        orders="; ".join(o.label for o in orders),
        fractures=[_fracture_view(f, texts) for f in decision.fractures],
        addressed="",
        undated_augmentation="",
        unavailable=" ".join(
            x
            for x in (
                _unavailable_sentence(decision.unavailable, texts),
                unreadable_sentence(decision.unreadable, texts),
            )
            if x
        ),
    )
    if recommendation == "order-not-supported":
        detail = content.templates["order-not-supported"].render(
            **common,
            not_supported=order_texts["text"]["not_supported"].format(days=decision.recent_days),
            old_fracture=old_fracture,
        )
    elif recommendation == "contraindicated":
        detail = content.templates["contraindicated"].render(
            **common,
            absolutes=[_absolute_view(c, texts) for c in decision.absolute],
            statement=order_texts["text"]["contraindicated"],
            notes=[_note_view(c, texts) for c in decision.contraindications if c.kind != "absolute"],
        )
    else:
        detail = content.templates["order-caution"].render(
            **common, notes=[_note_view(c, texts) for c in decision.contraindications]
        )
    card = _card(
        summary,
        detail,
        "critical" if recommendation == "contraindicated" else "warning",
        texts,
        rationale_url,
        recommendation if recommendation.startswith("order-") else f"order-{recommendation}",
        finding(decision, recommendation),
        new_uuid,
    )
    card["source"]["topic"] = dict(order_texts["source"]["topic"])  # not the referral's topic
    if recommendation in ("order-not-supported", "contraindicated"):
        label = order_texts["text"]["remove_label"]
        card["selectionBehavior"] = "at-most-one"  # CDS Hooks 2.0.1: required with suggestions
        card["suggestions"] = [
            {
                "uuid": new_uuid(),
                "label": label,
                "actions": [{"type": "delete", "description": label, "resourceId": o.ref} for o in orders],
            }
        ]
    return card
