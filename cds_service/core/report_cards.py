"""Card parts for fractures read from radiology reports (clinical-rules.md §7): the quoted
sentence, the "add to problem list" suggestion, and the `evaluate` card. Pure, like card_builder."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cds_service.core.rules.fractures import Fracture
from cds_service.core.rules.reports import ReportMention


def fracture_place(level: str | None, region: str | None, texts: Mapping[str, Any]) -> str:
    """'L1', 'thoracic', or the card texts' words for an unknown level."""
    return level or region or str(texts["place"]["level_unknown"])


def report_sentences(
    fractures: Sequence[Fracture],
    mentions: Sequence[ReportMention],
    texts: Mapping[str, Any],
    escape: Callable[[object], str],
) -> list[str]:
    """One line per report finding (the sentence, its date and modality), then the uncertain ones."""
    t = texts["reports"]
    lines: list[str] = []
    for fracture in fractures:
        quoted: set[str] = set()
        for found in fracture.reports:
            if found.ref in quoted:
                continue  # one sentence per report: the findings and the impression often repeat
            quoted.add(found.ref)
            preliminary = f", {t['preliminary']}" if found.status == "preliminary" else ""
            values = {
                "date": found.date.isoformat() if found.date else t["undated"],
                "modality": t["modality"].get(found.modality, found.modality)
                if found.modality
                else t["imaging"],
                "preliminary": preliminary,
                "quote": escape(found.quote or ""),
            }
            lines.append(str(t["quote" if found.quote else "coded"]).format(**values))
        if fracture.basis == "imaging-report" and fracture.etiology == "unspecified":
            lines.append(str(t["unspecified"]))
    if mentions:
        items = "; ".join(
            f"“{escape(m.quote)}” ({m.report.date.isoformat() if m.report.date else t['undated']})"
            for m in mentions
        )
        lines.append(str(t["uncertain"]).format(items=items))
    return list(dict.fromkeys(lines))


def report_only(fractures: Sequence[Fracture]) -> list[Fracture]:
    """Fractures with no Condition behind them: the problem list does not know them yet."""
    return [f for f in fractures if not f.condition_refs and f.reports]


def _codings(fracture: Fracture, problem_codes: Mapping[str, Any]) -> list[dict[str, str]]:
    for entry in problem_codes["codes"]:
        if entry["etiology"] == fracture.etiology and entry["region"] in ("any", fracture.region):
            return [dict(c) for c in entry["codings"]]
    return []


def problem_list_suggestion(
    fractures: Sequence[Fracture],
    texts: Mapping[str, Any],
    problem_codes: Mapping[str, Any],
    *,
    patient_id: str,
    level_coding: Callable[[str], tuple[str, str] | None],
    new_uuid: Callable[[], str],
) -> dict[str, Any]:
    """§7: one draft Condition per report-only fracture, unconfirmed, on the problem list, its
    evidence the report."""
    actions = []
    for fracture in fractures:
        condition: dict[str, Any] = {
            "resourceType": "Condition",
            "clinicalStatus": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
                ]
            },
            "verificationStatus": {"coding": [dict(problem_codes["verificationStatus"])]},
            "category": [{"coding": [dict(problem_codes["category"])]}],
            "code": {
                "coding": _codings(fracture, problem_codes),
                "text": str(texts["problem_list"]["code_text"]).format(
                    where=fracture_place(fracture.level, fracture.region, texts)
                ),
            },
            "subject": {"reference": f"Patient/{patient_id}"},
            "onsetDateTime": fracture.diagnosed_on.isoformat(),
            # One reference per report, however many of its sentences describe the fracture.
            "evidence": [
                {"detail": [{"reference": ref} for ref in dict.fromkeys(r.ref for r in fracture.reports)]}
            ],
        }
        coding = level_coding(fracture.level) if fracture.level else None
        if coding is not None:
            condition["bodySite"] = [
                {"coding": [{"system": coding[0], "code": coding[1]}], "text": fracture.level}
            ]
        if not condition["code"]["coding"]:
            del condition["code"]["coding"]
        actions.append(
            {"type": "create", "description": texts["problem_list"]["label"], "resource": condition}
        )
    return {"uuid": new_uuid(), "label": texts["problem_list"]["label"], "actions": actions}
