# ruff: noqa: E501  (report texts and scenario descriptions are data: one line each reads best)
"""Writes fhir_fixtures/1NN-report-*/ (clinical-rules §7 scenarios).

Data for the DiagnosticReport integration (issue 13): the lead moves the folders into fhir_fixtures/
when the record reader reads reports. Run: .venv/bin/python tests/support/make_report_fixtures.py
Each scenario's report is written like a real one; the expected outcome follows fhir_fixtures/README.md
and api-contract.md revision 2 (members with no value omitted).
"""

from __future__ import annotations

import base64
import json
import shutil
import uuid
from datetime import date
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[2] / "fhir_fixtures"
AS_OF = date(2026, 6, 15)
LOINC = "http://loinc.org"
V2_0074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
OLD_V2_0074 = "http://hl7.org/fhir/v2/0074"
ICD = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"

CODES = {
    "mr-l": (LOINC, "24968-0", "MR Lumbar spine", "MR"),
    "mr-t": (LOINC, "24980-5", "MR Thoracic spine", "MR"),
    "mr-tl": (LOINC, "30854-4", "MR Thoracic and Lumbar spine", "MR"),
    "ct-l": (LOINC, "24963-1", "CT Lumbar spine", "CT"),
    "ct-t": (LOINC, "24978-9", "CT Thoracic spine", "CT"),
    "xr-l": (LOINC, "24970-6", "XR Lumbar spine", "XR"),
    "xr-t": (LOINC, "24983-9", "XR Thoracic spine", "XR"),
    "nm": (LOINC, "39818-0", "NM Whole body Bone Views", "NM"),
    "xr-chest": (LOINC, "36643-5", "XR Chest 2 Views", "XR"),
    "ct-abd": (None, None, "CT Abdomen and Pelvis with contrast", "CT"),
    "xr-wrist": (None, None, "XR Wrist 3 views", "XR"),
    "lab": (None, None, "Complete blood count", None),
}
LEVEL_SITE = {"L1": ("66794005", "Bone structure of L1"), "T12": ("23215003", "Bone structure of T12")}


def report_text(
    exam: str, history: str, technique: str, comparison: str, findings: str, impression: str
) -> str:
    return (
        f"EXAM: {exam}\n\nCLINICAL HISTORY: {history}\n\nTECHNIQUE: {technique}\n\n"
        f"COMPARISON: {comparison}\n\nFINDINGS:\n{findings}\n\nIMPRESSION:\n{impression}\n"
    )


def b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def ident(sid: str, name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"vertebral-augmentation-cds/{sid}/{name}"))


def patient(sid: str, family: str, given: str, gender: str, birth: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": f"{sid}-patient",
        "name": [{"use": "official", "family": family, "given": [given]}],
        "gender": gender,
        "birthDate": birth,
    }


def condition(
    sid: str, name: str, system: str, code: str, display: str, onset: str, **extra: Any
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": f"{sid}-{name}",
        "clinicalStatus": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
            ]
        },
        "verificationStatus": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}
            ]
        },
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                        "code": extra.pop("category", "problem-list-item"),
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": system, "code": code, "display": display}], "text": display},
        "subject": {"reference": f"Patient/{sid}-patient"},
        "onsetDateTime": onset,
        "recordedDate": onset,
    }
    level = extra.pop("level", None)
    if level:
        site, site_display = LEVEL_SITE[level]
        resource["bodySite"] = [{"coding": [{"system": SNOMED, "code": site, "display": site_display}]}]
    resource.update(extra)
    return resource


def osteoporosis(sid: str) -> dict[str, Any]:
    return condition(
        sid,
        "osteoporosis",
        ICD,
        "M81.0",
        "Age-related osteoporosis without current pathological fracture",
        "2019-03-04",
    )


def diagnostic_report(
    sid: str,
    name: str,
    kind: str,
    when: str | None,
    *,
    text: str | None = None,
    conclusion: str | None = None,
    status: str = "final",
    html: bool = False,
    url_only: bool = False,
    category: str = "RAD",
    category_system: str = V2_0074,
    conclusion_code: tuple[str, str, str] | None = None,
    date_field: str = "effectiveDateTime",
    extra_form: list[Any] | None = None,
) -> dict[str, Any]:
    system, code, display, _ = CODES[kind]
    resource: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": f"{sid}-{name}",
        "status": status,
        "category": [{"coding": [{"system": category_system, "code": category}]}],
        "code": {"text": display},
        "subject": {"reference": f"Patient/{sid}-patient"},
    }
    if category == "RAD":
        resource["category"].append(
            {"coding": [{"system": LOINC, "code": "LP29684-5", "display": "Radiology"}]}
        )
    if system:
        resource["code"]["coding"] = [{"system": system, "code": code, "display": display}]
    if when:
        if date_field == "effectivePeriod":
            resource["effectivePeriod"] = {"start": when}
        elif date_field == "issued":
            resource["issued"] = f"{when}T16:30:00Z"
        else:
            resource["effectiveDateTime"] = when
            resource["issued"] = f"{when}T16:30:00Z"
    if conclusion:
        resource["conclusion"] = conclusion
    if conclusion_code:
        c_system, c_code, c_display = conclusion_code
        resource["conclusionCode"] = [
            {"coding": [{"system": c_system, "code": c_code, "display": c_display}]}
        ]
    forms: list[Any] = []
    if url_only:
        forms.append(
            {"contentType": "application/pdf", "url": f"https://ehr.example.org/reports/{sid}-{name}.pdf"}
        )
    elif text is not None:
        if html:
            body = "".join(
                f"<h3>{part.split(':', 1)[0]}</h3><p>{part.split(':', 1)[1].strip()}</p>"
                if ":" in part
                else f"<p>{part}</p>"
                for part in text.strip().split("\n\n")
            )
            page = (
                "<html><head><style>h3{font-weight:bold}</style>"
                "<script>window.reportLoaded = true;</script></head><body>" + body + "</body></html>"
            )
            forms.append({"contentType": "text/html; charset=UTF-8", "data": b64(page)})
        else:
            forms.append({"contentType": "text/plain; charset=utf-8", "data": b64(text)})
    if extra_form:
        forms += extra_form
    if forms:
        resource["presentedForm"] = forms
    return resource


def age(day: str) -> int:
    return (AS_OF - date.fromisoformat(day)).days


def report_fracture(
    sid: str,
    level: str | None,
    day: str,
    *,
    etiology: str = "unspecified",
    status: str = "final",
    modality: str = "MR",
    classification: str | None = "acute",
    evidence: list[str] | None = None,
    region: str | None = None,
    basis: str = "imaging-report",
) -> dict[str, Any]:
    fracture: dict[str, Any] = {"etiology": etiology, "basis": basis}
    if level:
        fracture["level"] = level
        fracture["region"] = "thoracic" if level.startswith("T") else "lumbar"
    elif region:
        fracture["region"] = region
    fracture["diagnosedOn"] = day
    fracture["ageDays"] = age(day)
    fracture["evidence"] = evidence or [f"DiagnosticReport/{sid}-dr"]
    report: dict[str, Any] = {"status": status, "modality": modality}
    if classification:
        report["classification"] = classification
    fracture["report"] = report
    return fracture


def refer(
    fractures: list[dict[str, Any]], *, acuity: bool, problem_list: bool = True, **extra: Any
) -> dict[str, Any]:
    expected: dict[str, Any] = {
        "cards": 1,
        "indicator": extra.pop("indicator", "info"),
        "recommendation": "refer",
        "suggestion": True,
        "referralSuggestion": True,
        "problemListSuggestion": problem_list,
        "fractures": fractures,
        "imaging": {"acuityConfirmed": acuity},
    }
    if problem_list:
        expected["selectionBehavior"] = "any"
    expected.update(extra)
    return expected


def evaluate(fractures: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    expected: dict[str, Any] = {
        "cards": 1,
        "indicator": "info",
        "recommendation": "evaluate",
        "suggestion": True,
        "referralSuggestion": False,
        "problemListSuggestion": True,
        "fractures": fractures,
        "imaging": {"acuityConfirmed": False},
        "detailContains": ["DXA", "MRI (STIR)"],
    }
    expected.update(extra)
    return expected


NONE: dict[str, Any] = {"cards": 0}
SCENARIOS: list[dict[str, Any]] = []


def scenario(
    number: int,
    slug: str,
    description: str,
    rules: list[str],
    resources: list[dict[str, Any]],
    expected: dict[str, Any],
) -> None:
    SCENARIOS.append(
        {
            "number": number,
            "slug": slug,
            "description": description,
            "rules": rules,
            "resources": resources,
            "expected": expected,
        }
    )


ACUTE_L1_MR = report_text(
    "MRI lumbar spine without contrast",
    "78-year-old woman with sudden low back pain after lifting groceries 10 days ago. Evaluate for fracture.",
    "Sagittal T1, T2 and STIR and axial T2-weighted images of the lumbar spine without contrast.",
    "Lumbar spine radiographs 2026-06-01.",
    "There is an acute compression fracture of the L1 vertebral body with diffuse marrow edema on STIR "
    "images and approximately 30% loss of anterior height. No retropulsion. The posterior elements are "
    "intact. The remaining vertebral body heights are maintained. Mild disc desiccation at L4-5 with a "
    "small broad-based disc bulge without stenosis. The conus terminates normally at L1-2.",
    "1. Acute L1 compression fracture with marrow edema, no retropulsion.\n2. Mild L4-5 degenerative disc disease.",
)


def build() -> None:
    n = 100
    sid = f"s{n}"
    scenario(
        n,
        "acute-l1-mri-osteoporosis",
        "Report only: MRI shows an acute L1 compression fracture with marrow edema, osteoporosis on record, no fracture on the problem list: refer and offer the problem-list entry",
        [
            "clinical-rules §7 text finding acute (marrow edema)",
            "§7 report-only acute: two suggestions, selectionBehavior any",
            "§7 etiology osteoporotic when osteoporosis is on record",
        ],
        [
            patient(sid, "Hartley", "Margaret", "female", "1948-02-11"),
            osteoporosis(sid),
            diagnostic_report(sid, "dr", "mr-l", "2026-06-05", text=ACUTE_L1_MR),
        ],
        refer(
            [report_fracture(sid, "L1", "2026-06-05", etiology="osteoporotic")],
            acuity=True,
            detailContains=["L1", "MRI"],
        ),
    )
    n = 101
    sid = f"s{n}"
    scenario(
        n,
        "acute-l1-mri-no-osteoporosis",
        "Report only: acute L1 fracture on MRI, nothing on record about bone health: etiology unspecified, refer, advise evaluation for osteoporosis",
        [
            "clinical-rules §7 etiology unspecified",
            "§7 the card adds evaluate for osteoporosis (DXA) and other causes",
        ],
        [
            patient(sid, "Okafor", "Grace", "female", "1951-07-30"),
            diagnostic_report(sid, "dr", "mr-l", "2026-06-05", text=ACUTE_L1_MR),
        ],
        refer([report_fracture(sid, "L1", "2026-06-05")], acuity=True, detailContains=["DXA"]),
    )
    ct_incidental = report_text(
        "CT abdomen and pelvis with IV contrast",
        "Right lower quadrant pain.",
        "Axial images from the lung bases to the symphysis after IV contrast; sagittal and coronal reformats.",
        "None.",
        "The appendix is normal. No bowel obstruction or free fluid. The liver, spleen, pancreas and adrenal "
        "glands are unremarkable. Simple cyst in the left kidney. Bones: diffuse osteopenia. Moderate "
        "compression deformity of T12 with approximately 35% loss of anterior height. No retropulsion.",
        "1. No acute abdominal or pelvic process.\n2. Moderate T12 compression deformity.",
    )
    n = 102
    sid = f"s{n}"
    scenario(
        n,
        "incidental-t12-ct-osteoporosis",
        "Incidental moderate T12 compression deformity on an abdominal CT, age unknown, osteoporosis on record: evaluate card (no referral), problem-list suggestion",
        [
            "clinical-rules §7 unqualified finding → recommendation evaluate",
            "§7 augmentation is never preventive: no referral by itself",
        ],
        [
            patient(sid, "Lindqvist", "Ingrid", "female", "1944-12-03"),
            osteoporosis(sid),
            diagnostic_report(sid, "dr", "ct-abd", "2026-06-10", text=ct_incidental),
        ],
        evaluate(
            [
                report_fracture(
                    sid,
                    "T12",
                    "2026-06-10",
                    etiology="osteoporotic",
                    modality="CT",
                    classification="unqualified",
                )
            ]
        ),
    )
    n = 103
    sid = f"s{n}"
    scenario(
        n,
        "incidental-t12-ct-no-osteoporosis",
        "Incidental T12 compression deformity on CT, no osteoporosis on record: evaluate card, etiology unspecified",
        ["clinical-rules §7 unqualified finding → evaluate", "§7 etiology unspecified"],
        [
            patient(sid, "Brennan", "Thomas", "male", "1950-04-18"),
            diagnostic_report(sid, "dr", "ct-abd", "2026-06-10", text=ct_incidental),
        ],
        evaluate([report_fracture(sid, "T12", "2026-06-10", modality="CT", classification="unqualified")]),
    )
    n = 104
    sid = f"s{n}"
    scenario(
        n,
        "chronic-t12-mri",
        "MRI reports a chronic T12 compression deformity without marrow edema: no card",
        ["clinical-rules §7 chronic ('chronic', 'no marrow edema'): not recent"],
        [
            patient(sid, "Novak", "Helena", "female", "1946-09-09"),
            osteoporosis(sid),
            diagnostic_report(
                sid,
                "dr",
                "mr-t",
                "2026-06-08",
                text=report_text(
                    "MRI thoracic spine without contrast",
                    "Mid back pain for 6 months.",
                    "Sagittal T1, T2, STIR; axial T2.",
                    "CT chest 2025-11-02.",
                    "Chronic mild compression deformity of T12 with no marrow edema, unchanged compared with the prior CT. "
                    "No acute fracture. Mild multilevel thoracic spondylosis without canal stenosis.",
                    "Chronic T12 compression deformity. No acute fracture.",
                ),
            ),
        ],
        NONE,
    )
    n = 105
    sid = f"s{n}"
    scenario(
        n,
        "negated-no-fracture",
        "MRI for back pain: 'no compression fracture', degenerative changes only: no card",
        ["clinical-rules §7 negated ('no', 'without'): no finding"],
        [
            patient(sid, "Adeyemi", "Funke", "female", "1955-01-21"),
            osteoporosis(sid),
            diagnostic_report(
                sid,
                "dr",
                "mr-l",
                "2026-06-09",
                text=report_text(
                    "MRI lumbar spine without contrast",
                    "Low back pain, osteoporosis. Rule out compression fracture.",
                    "Sagittal T1, T2, STIR; axial T2.",
                    "None.",
                    "Vertebral body heights are maintained without compression deformity. Marrow signal is normal. "
                    "Moderate facet arthropathy at L4-5 and L5-S1. Mild disc height loss at L5-S1.",
                    "No compression fracture. Lower lumbar facet arthropathy.",
                ),
            ),
        ],
        NONE,
    )
    n = 106
    sid = f"s{n}"
    scenario(
        n,
        "uncertain-possible-l2",
        "Radiograph: 'possible mild compression fracture of L2, MRI could be considered': uncertain, never triggers alone",
        ["clinical-rules §7 uncertain ('possible'): never triggers alone"],
        [
            patient(sid, "Moreau", "Claire", "female", "1949-05-14"),
            osteoporosis(sid),
            diagnostic_report(
                sid,
                "dr",
                "xr-l",
                "2026-06-11",
                text=report_text(
                    "XR lumbar spine, 2 views",
                    "Back pain after a fall.",
                    "AP and lateral views.",
                    "None.",
                    "Possible mild compression fracture of the L2 superior endplate. Alignment is maintained. "
                    "Moderate degenerative disc disease at L4-5.",
                    "Possible mild L2 compression fracture; MRI could be considered if clinically indicated.",
                ),
            ),
        ],
        NONE,
    )
    n = 107
    sid = f"s{n}"
    scenario(
        n,
        "history-section-only",
        "The fracture words appear only under CLINICAL HISTORY (the question); findings are normal: no card",
        ["clinical-rules §7 sentences under CLINICAL HISTORY are skipped"],
        [
            patient(sid, "Fischer", "Anna", "female", "1953-03-02"),
            osteoporosis(sid),
            diagnostic_report(
                sid,
                "dr",
                "mr-l",
                "2026-06-09",
                text=report_text(
                    "MRI lumbar spine",
                    "Acute L1 compression fracture suspected on radiographs? Please assess acuity.",
                    "Sagittal T1, T2, STIR; axial T2.",
                    "None.",
                    "The vertebral body heights are preserved and marrow signal is normal. No fracture. Mild disc bulge at L4-5.",
                    "Normal MRI of the lumbar spine for age.",
                ),
            ),
        ],
        NONE,
    )
    n = 108
    sid = f"s{n}"
    scenario(
        n,
        "indication-and-technique-only",
        "Fracture words only in INDICATION and TECHNIQUE, unremarkable findings: no card",
        ["clinical-rules §7 sentences under INDICATION / TECHNIQUE are skipped"],
        [
            patient(sid, "Duarte", "Rosa", "female", "1950-10-10"),
            osteoporosis(sid),
            diagnostic_report(
                sid,
                "dr",
                "ct-t",
                "2026-06-12",
                text=(
                    "EXAM: CT thoracic spine without contrast\n\nINDICATION: Fall. Evaluate for acute compression fracture.\n\n"
                    "TECHNIQUE: Protocol for vertebral compression fracture: thin axial images with sagittal reformats.\n\n"
                    "FINDINGS:\nNormal alignment. Vertebral body heights are maintained. No acute osseous abnormality.\n\n"
                    "IMPRESSION:\nNo acute fracture of the thoracic spine.\n"
                ),
            ),
        ],
        NONE,
    )
    n = 109
    sid = f"s{n}"
    scenario(
        n,
        "comparison-section-only",
        "COMPARISON names an old L1 fracture on a prior study; current findings show nothing new: no card",
        ["clinical-rules §7 sentences under COMPARISON are skipped"],
        [
            patient(sid, "Kowalski", "Ewa", "female", "1947-08-19"),
            osteoporosis(sid),
            diagnostic_report(
                sid,
                "dr",
                "xr-l",
                "2026-06-10",
                text=report_text(
                    "XR lumbar spine",
                    "Back pain.",
                    "AP and lateral views.",
                    "MRI 2026-02-01 describing an acute L1 compression fracture, since treated with kyphoplasty.",
                    "Status post L1 kyphoplasty with cement in the L1 vertebral body. No new fracture. Alignment is maintained.",
                    "No new fracture.",
                ),
            ),
        ],
        NONE,
    )
    n = 110
    sid = f"s{n}"
    scenario(
        n,
        "cervical-only",
        "CT cervical spine: acute compression fracture of C6: cervical levels alone are out of scope, no card",
        ["clinical-rules §7 cervical levels alone are not findings"],
        [
            patient(sid, "Walsh", "Patrick", "male", "1941-11-25"),
            osteoporosis(sid),
            diagnostic_report(
                sid,
                "dr",
                "ct-t",
                "2026-06-12",
                text=report_text(
                    "CT cervical spine without contrast",
                    "Fall from standing, neck pain.",
                    "Axial images with reformats.",
                    "None.",
                    "Acute compression fracture of the C6 vertebral body with 20% height loss. No retropulsion. "
                    "Prevertebral soft tissues are mildly thickened.",
                    "Acute C6 compression fracture.",
                ),
            ),
        ],
        NONE,
    )
    n = 111
    sid = f"s{n}"
    scenario(
        n,
        "sacral-insufficiency",
        "MRI pelvis: sacral insufficiency fracture with marrow edema: sacral alone is out of scope, no card",
        ["clinical-rules §7 sacral levels alone are not findings"],
        [
            patient(sid, "Ivanova", "Olga", "female", "1945-06-06"),
            osteoporosis(sid),
            diagnostic_report(
                sid,
                "dr",
                "mr-l",
                "2026-06-08",
                text=report_text(
                    "MRI lumbar spine and sacrum",
                    "Buttock pain.",
                    "Sagittal and coronal STIR and T1.",
                    "None.",
                    "Acute insufficiency fracture of the right sacral ala with marrow edema. The lumbar vertebral body "
                    "heights are maintained.",
                    "Right sacral insufficiency fracture.",
                ),
            ),
        ],
        NONE,
    )
    n = 112
    sid = f"s{n}"
    scenario(
        n,
        "disc-and-transverse-process",
        "CT after a fall: L2 transverse process fracture and disc height loss, vertebral bodies intact: not vertebral body fractures, no card",
        ["clinical-rules §7 not findings: discs, transverse processes, ribs"],
        [
            patient(sid, "Hughes", "Robert", "male", "1952-02-28"),
            osteoporosis(sid),
            diagnostic_report(
                sid,
                "dr",
                "ct-l",
                "2026-06-12",
                text=report_text(
                    "CT lumbar spine without contrast",
                    "Fall onto the left side.",
                    "Axial images with reformats.",
                    "None.",
                    "Acute nondisplaced fracture of the left L2 transverse process. Acute fracture of the left 12th rib. "
                    "Vertebral body heights are maintained. Disc height loss at L4-5 and L5-S1.",
                    "Left L2 transverse process and left 12th rib fractures. No vertebral body fracture.",
                ),
            ),
        ],
        NONE,
    )
    n = 113
    sid = f"s{n}"
    scenario(
        n,
        "mr-sequence-not-level",
        "MRI: a T2 hyperintense hemangioma; 'T1'/'T2' are sequences, not levels; no fracture: no card",
        ["clinical-rules §7 'T1'/'T2' followed by weighted / hyperintense / signal are MR sequences"],
        [
            patient(sid, "Rossi", "Giulia", "female", "1956-04-04"),
            osteoporosis(sid),
            diagnostic_report(
                sid,
                "dr",
                "mr-t",
                "2026-06-10",
                text=report_text(
                    "MRI thoracic spine",
                    "Back pain.",
                    "Sagittal T1-weighted, T2-weighted and STIR images.",
                    "None.",
                    "There is a 1.2 cm T1 and T2 hyperintense lesion in the T9 vertebral body consistent with a hemangioma. "
                    "No compression fracture. Normal T1 marrow signal elsewhere.",
                    "T9 hemangioma. No fracture.",
                ),
            ),
        ],
        NONE,
    )
    n = 114
    sid = f"s{n}"
    scenario(
        n,
        "range-t11-l1",
        "MRI: acute compression fractures from T11 through L1 with marrow edema: a range names every level between",
        ["clinical-rules §7 levels: ranges ('T11 through L1')", "§7 acute (marrow edema)"],
        [
            patient(sid, "Schmidt", "Gerda", "female", "1940-01-15"),
            osteoporosis(sid),
            diagnostic_report(
                sid,
                "dr",
                "mr-tl",
                "2026-06-06",
                text=report_text(
                    "MRI thoracic and lumbar spine",
                    "Severe back pain after coughing fit.",
                    "Sagittal T1, T2, STIR.",
                    "None.",
                    "Acute compression fractures from T11 through L1 with marrow edema at each level and 20-30% height loss. "
                    "No retropulsion. Normal cord signal.",
                    "Acute T11, T12 and L1 compression fractures.",
                ),
            ),
        ],
        refer(
            [report_fracture(sid, lv, "2026-06-06", etiology="osteoporotic") for lv in ("T11", "T12", "L1")],
            acuity=True,
        ),
    )
    n = 115
    sid = f"s{n}"
    scenario(
        n,
        "list-four-levels",
        "MRI: acute fractures of T12, L1, L2 and L3 (a list): four recent levels, the multiple-levels note",
        ["clinical-rules §7 levels: lists", "§5 multiple-levels (more than three)"],
        [
            patient(sid, "Tanaka", "Yumiko", "female", "1939-09-01"),
            osteoporosis(sid),
            diagnostic_report(
                sid,
                "dr",
                "mr-l",
                "2026-06-07",
                text=report_text(
                    "MRI lumbar spine",
                    "Myeloma screening negative; severe back pain.",
                    "Sagittal T1, T2, STIR.",
                    "None.",
                    "Acute compression fractures of T12, L1, L2 and L3 with marrow edema. Mild retropulsion at L1 without "
                    "canal stenosis.",
                    "Four acute osteoporotic-appearing compression fractures, T12 through L3.",
                ),
            ),
        ],
        refer(
            [
                report_fracture(sid, lv, "2026-06-07", etiology="osteoporotic")
                for lv in ("T12", "L1", "L2", "L3")
            ],
            acuity=True,
            contraindications=[
                {"code": "multiple-levels", "kind": "relative", "evidence": [f"DiagnosticReport/{sid}-dr"]}
            ],
        ),
    )
    n = 116
    sid = f"s{n}"
    scenario(
        n,
        "two-levels-two-cues",
        "MRI: 'chronic T7 wedge deformity and new acute fracture of T11': each level by its own cue, only T11 is recent",
        [
            "clinical-rules §7 a clause naming two levels with different cues classifies each by the cue next to it"
        ],
        [
            patient(sid, "Bauer", "Liesel", "female", "1943-03-12"),
            osteoporosis(sid),
            diagnostic_report(
                sid,
                "dr",
                "mr-t",
                "2026-06-09",
                text=report_text(
                    "MRI thoracic spine",
                    "New mid back pain.",
                    "Sagittal T1, T2, STIR; axial T2.",
                    "Radiographs 2025-10-01.",
                    "Chronic T7 wedge deformity and new acute fracture of T11 with marrow edema and 25% height loss. "
                    "No retropulsion.",
                    "Acute T11 compression fracture. Chronic T7 wedge deformity.",
                ),
            ),
        ],
        refer([report_fracture(sid, "T11", "2026-06-09", etiology="osteoporotic")], acuity=True),
    )
    n = 117
    sid = f"s{n}"
    scenario(
        n,
        "bone-scan-uptake-t8",
        "Bone scan: intense linear uptake at T8 consistent with a compression fracture: acute, NM confirms acuity",
        ["clinical-rules §7 bone-scan uptake at the level = acute", "§7 NM with uptake confirms acuity"],
        [
            patient(sid, "Clarke", "Joan", "female", "1942-07-07"),
            osteoporosis(sid),
            diagnostic_report(
                sid,
                "dr",
                "nm",
                "2026-06-03",
                text=report_text(
                    "NM bone scan whole body",
                    "Breast cancer in remission, new thoracic back pain.",
                    "Whole body planar images 3 hours after 740 MBq Tc-99m MDP.",
                    "None.",
                    "Intense linear uptake at T8 consistent with a compression fracture. No scintigraphic evidence of "
                    "osseous metastatic disease. Degenerative uptake in both knees.",
                    "T8 compression fracture with intense uptake. No bone metastases.",
                ),
            ),
        ],
        refer(
            [report_fracture(sid, "T8", "2026-06-03", etiology="osteoporotic", modality="NM")], acuity=True
        ),
    )
    n = 118
    sid = f"s{n}"
    scenario(
        n,
        "radiograph-new-l2",
        "Radiograph: new L2 compression deformity since a radiograph 3 months ago: acute (new), XR does not confirm acuity",
        ["clinical-rules §7 acute ('new')", "§4 XR confirms the fracture, not its age"],
        [
            patient(sid, "Petrov", "Nadia", "female", "1948-12-24"),
            osteoporosis(sid),
            diagnostic_report(
                sid,
                "dr",
                "xr-l",
                "2026-06-10",
                text=report_text(
                    "XR lumbar spine, 2 views",
                    "Worsening back pain.",
                    "AP and lateral views.",
                    "Lumbar spine radiographs 2026-03-09.",
                    "There is a new moderate compression deformity of L2 with 35% anterior height loss compared with the prior "
                    "study. The remaining vertebral body heights are unchanged.",
                    "New L2 compression deformity since March.",
                ),
            ),
        ],
        refer(
            [report_fracture(sid, "L2", "2026-06-10", etiology="osteoporotic", modality="XR")], acuity=False
        ),
    )
    n = 119
    sid = f"s{n}"
    scenario(
        n,
        "preliminary-report",
        "Preliminary MRI report of an acute L1 fracture: counts, the card says 'preliminary report'",
        ["clinical-rules §7 status preliminary counts and the card says so"],
        [
            patient(sid, "Murphy", "Siobhan", "female", "1950-02-02"),
            osteoporosis(sid),
            diagnostic_report(sid, "dr", "mr-l", "2026-06-13", text=ACUTE_L1_MR, status="preliminary"),
        ],
        refer(
            [report_fracture(sid, "L1", "2026-06-13", etiology="osteoporotic", status="preliminary")],
            acuity=True,
            detailContains=["preliminary report"],
        ),
    )
    n = 120
    sid = f"s{n}"
    scenario(
        n,
        "registered-report-ignored",
        "A report in status registered (not yet read) with fracture text: does not count, no card",
        ["clinical-rules §7 registered does not count"],
        [
            patient(sid, "Ng", "Lily", "female", "1949-04-30"),
            osteoporosis(sid),
            diagnostic_report(sid, "dr", "mr-l", "2026-06-13", text=ACUTE_L1_MR, status="registered"),
        ],
        NONE,
    )
    n = 121
    sid = f"s{n}"
    scenario(
        n,
        "entered-in-error-and-cancelled",
        "An entered-in-error and a cancelled report, both describing an acute fracture: ignored, no card",
        ["clinical-rules §7 cancelled and entered-in-error do not count"],
        [
            patient(sid, "Silva", "Marta", "female", "1947-01-09"),
            osteoporosis(sid),
            diagnostic_report(sid, "dr", "mr-l", "2026-06-12", text=ACUTE_L1_MR, status="entered-in-error"),
            diagnostic_report(
                sid,
                "dr2",
                "ct-l",
                "2026-06-12",
                conclusion="Acute L3 compression fracture.",
                status="cancelled",
            ),
        ],
        NONE,
    )
    n = 122
    sid = f"s{n}"
    scenario(
        n,
        "amended-report",
        "Amended CT report (addendum adds the acute fracture seen on reformats): amended counts",
        ["clinical-rules §7 status amended counts", "§7 acute ('acute')"],
        [
            patient(sid, "Jensen", "Karen", "female", "1951-08-08"),
            osteoporosis(sid),
            diagnostic_report(
                sid,
                "dr",
                "ct-l",
                "2026-06-11",
                status="amended",
                text=report_text(
                    "CT lumbar spine without contrast",
                    "Fall on ice.",
                    "Axial images with sagittal reformats.",
                    "None.",
                    "ADDENDUM: On review of the sagittal reformats there is an acute compression fracture of L3 with a "
                    "fracture line through the superior endplate. No retropulsion.",
                    "Acute L3 compression fracture (addendum).",
                ),
            ),
        ],
        refer(
            [
                report_fracture(
                    sid, "L3", "2026-06-11", etiology="osteoporotic", status="amended", modality="CT"
                )
            ],
            acuity=False,
        ),
    )
    n = 123
    sid = f"s{n}"
    scenario(
        n,
        "acute-but-old-report",
        "MRI described an acute L1 fracture 120 days ago: dated by the report, not recent, no card",
        ["clinical-rules §7 acute text findings are dated by the report", "§1 recent = within 60 days"],
        [
            patient(sid, "Keller", "Ruth", "female", "1944-05-05"),
            osteoporosis(sid),
            diagnostic_report(sid, "dr", "mr-l", "2026-02-15", text=ACUTE_L1_MR),
        ],
        NONE,
    )
    n = 124
    sid = f"s{n}"
    scenario(
        n,
        "url-only-report-with-coded-fracture",
        "Coded recent L1 fracture plus a spine report whose only text is a PDF url: referral card, report counted unreadable",
        [
            "clinical-rules §7 a url-only report is not fetched: unreadable DiagnosticReport",
            "§1a unreadable counted on the card",
        ],
        [
            patient(sid, "Olsen", "Birgit", "female", "1946-10-31"),
            osteoporosis(sid),
            condition(
                sid,
                "fx",
                ICD,
                "M80.08XA",
                "Age-related osteoporosis with current pathological fracture, vertebra(e), initial encounter for fracture",
                "2026-06-04",
                level="L1",
                category="encounter-diagnosis",
            ),
            diagnostic_report(sid, "dr", "mr-l", "2026-06-05", url_only=True),
        ],
        {
            "cards": 1,
            "indicator": "info",
            "recommendation": "refer",
            "suggestion": True,
            "referralSuggestion": True,
            "problemListSuggestion": False,
            "fractures": [
                {
                    "etiology": "osteoporotic",
                    "basis": "condition",
                    "level": "L1",
                    "region": "lumbar",
                    "diagnosedOn": "2026-06-04",
                    "ageDays": 11,
                    "evidence": [f"Condition/{sid}-fx"],
                }
            ],
            "imaging": {"acuityConfirmed": False},
            "unreadable": {"DiagnosticReport": 1},
        },
    )
    n = 125
    sid = f"s{n}"
    scenario(
        n,
        "presented-form-plain-base64",
        "Text only in presentedForm (text/plain; charset=utf-8, base64), no conclusion: acute T12 fracture read and referred",
        ["clinical-rules §7 text from presentedForm text/plain with a charset parameter"],
        [
            patient(sid, "Dubois", "Elise", "female", "1949-09-19"),
            osteoporosis(sid),
            diagnostic_report(
                sid,
                "dr",
                "mr-t",
                "2026-06-08",
                text=report_text(
                    "MRI thoracic spine",
                    "Thoracolumbar pain after a minor fall.",
                    "Sagittal T1, T2, STIR.",
                    "None.",
                    "Acute T12 compression fracture with bone marrow oedema and 20% loss of height. No retropulsion.",
                    "Acute T12 compression fracture.",
                ),
            ),
        ],
        refer([report_fracture(sid, "T12", "2026-06-08", etiology="osteoporotic")], acuity=True),
    )
    n = 126
    sid = f"s{n}"
    scenario(
        n,
        "presented-form-html",
        "Report text as text/html (with a style block and a script): tags stripped, acute L2 fracture referred",
        ["clinical-rules §7 text/html presentedForm, tags stripped"],
        [
            patient(sid, "Andersson", "Maja", "female", "1945-11-11"),
            osteoporosis(sid),
            diagnostic_report(
                sid,
                "dr",
                "mr-l",
                "2026-06-09",
                html=True,
                text=report_text(
                    "MRI lumbar spine",
                    "Low back pain.",
                    "Sagittal T1, T2, STIR.",
                    "None.",
                    "Acute compression fracture of L2 with marrow edema and 25% height loss. No retropulsion.",
                    "Acute L2 compression fracture.",
                ),
            ),
        ],
        refer([report_fracture(sid, "L2", "2026-06-09", etiology="osteoporotic")], acuity=True),
    )
    n = 127
    sid = f"s{n}"
    page = (
        "<html><head><script>var template = 'Acute L1 compression fracture with marrow edema.';</script></head>"
        "<body><h3>FINDINGS</h3><p>Vertebral body heights are maintained. No fracture.</p>"
        "<h3>IMPRESSION</h3><p>Normal lumbar spine.</p></body></html>"
    )
    scenario(
        n,
        "html-script-not-text",
        "HTML report whose only fracture words are inside a script block: script content is not report text, no card",
        ["clinical-rules §7 text/html: tags stripped (script contents dropped)"],
        [
            patient(sid, "Weber", "Ute", "female", "1950-06-16"),
            osteoporosis(sid),
            diagnostic_report(
                sid, "dr", "mr-l", "2026-06-09", extra_form=[{"contentType": "text/html", "data": b64(page)}]
            ),
        ],
        NONE,
    )
    n = 128
    sid = f"s{n}"
    scenario(
        n,
        "conclusion-code-m8008xa",
        "Spine MRI report with conclusionCode M80.08XA and a terse conclusion: coded finding, like a Condition",
        ["clinical-rules §7 coded finding: a conclusionCode holding a §2 trigger code"],
        [
            patient(sid, "Horvat", "Mira", "female", "1947-02-17"),
            osteoporosis(sid),
            diagnostic_report(
                sid,
                "dr",
                "mr-l",
                "2026-06-06",
                conclusion="See report.",
                conclusion_code=(
                    ICD,
                    "M80.08XA",
                    "Age-related osteoporosis with current pathological fracture, vertebra(e), initial encounter for fracture",
                ),
            ),
        ],
        refer(
            [report_fracture(sid, None, "2026-06-06", etiology="osteoporotic", classification=None)],
            acuity=True,
        ),
    )
    n = 129
    sid = f"s{n}"
    scenario(
        n,
        "conclusion-code-443165006-wrist",
        "Wrist radiograph with conclusionCode 443165006 (osteoporotic fracture, site unspecified): not a spine report, no card",
        ["clinical-rules §7 443165006 is corroborated only by a spine report"],
        [
            patient(sid, "Berg", "Solveig", "female", "1946-03-03"),
            osteoporosis(sid),
            diagnostic_report(
                sid,
                "dr",
                "xr-wrist",
                "2026-06-10",
                text=report_text(
                    "XR left wrist, 3 views",
                    "Fall on outstretched hand.",
                    "PA, oblique and lateral views.",
                    "None.",
                    "Acute transverse fracture of the distal radius with dorsal angulation. Ulnar styloid fracture.",
                    "Acute distal radius fracture.",
                ),
                conclusion_code=(SNOMED, "443165006", "Osteoporotic fracture of bone"),
            ),
        ],
        NONE,
    )
    n = 130
    sid = f"s{n}"
    scenario(
        n,
        "conclusion-code-443165006-spine",
        "Spine radiograph with conclusionCode 443165006 and an acute L1 fracture in the text: the spine report corroborates the code",
        [
            "clinical-rules §7 443165006 corroborated by a spine report",
            "§7 a coded finding takes the etiology of its §2 code",
        ],
        [
            patient(sid, "Nilsen", "Astrid", "female", "1943-12-12"),
            diagnostic_report(
                sid,
                "dr",
                "xr-l",
                "2026-06-10",
                text=report_text(
                    "XR lumbar spine, 2 views",
                    "Back pain.",
                    "AP and lateral views.",
                    "None.",
                    "Acute compression fracture of L1 with 30% height loss.",
                    "Acute L1 compression fracture.",
                ),
                conclusion_code=(SNOMED, "443165006", "Osteoporotic fracture of bone"),
            ),
        ],
        refer(
            [report_fracture(sid, "L1", "2026-06-10", etiology="osteoporotic", modality="XR")], acuity=False
        ),
    )
    n = 131
    sid = f"s{n}"
    scenario(
        n,
        "condition-and-report-merge",
        "Coded recent L1 fracture and an MRI report of an acute L1 fracture: one fracture (merged by level), report carried in the finding, no problem-list suggestion",
        ["clinical-rules §7 report evidence merges with Conditions by level (§6)"],
        [
            patient(sid, "Larsen", "Inge", "female", "1945-04-22"),
            osteoporosis(sid),
            condition(
                sid,
                "fx",
                ICD,
                "M80.08XA",
                "Age-related osteoporosis with current pathological fracture, vertebra(e), initial encounter for fracture",
                "2026-06-04",
                level="L1",
                category="encounter-diagnosis",
            ),
            diagnostic_report(sid, "dr", "mr-l", "2026-06-05", text=ACUTE_L1_MR),
        ],
        {
            "cards": 1,
            "indicator": "info",
            "recommendation": "refer",
            "suggestion": True,
            "referralSuggestion": True,
            "problemListSuggestion": False,
            "fractures": [
                {
                    "etiology": "osteoporotic",
                    "basis": "condition",
                    "level": "L1",
                    "region": "lumbar",
                    "diagnosedOn": "2026-06-04",
                    "ageDays": 11,
                    "evidence": [f"Condition/{sid}-fx", f"DiagnosticReport/{sid}-dr"],
                    "report": {"status": "final", "modality": "MR", "classification": "acute"},
                }
            ],
            "imaging": {"acuityConfirmed": True},
        },
    )
    n = 132
    sid = f"s{n}"
    scenario(
        n,
        "imaging-chronic-note",
        "Coded recent L1 fracture, but the latest MRI calls the L1 deformity chronic (no marrow edema): imaging-chronic note",
        [
            "clinical-rules §7 imaging-chronic when the latest MR at a recent fracture's level calls it chronic"
        ],
        [
            patient(sid, "Meyer", "Doris", "female", "1942-10-02"),
            osteoporosis(sid),
            condition(
                sid,
                "fx",
                ICD,
                "M80.08XA",
                "Age-related osteoporosis with current pathological fracture, vertebra(e), initial encounter for fracture",
                "2026-06-01",
                level="L1",
                category="encounter-diagnosis",
            ),
            diagnostic_report(
                sid,
                "dr",
                "mr-l",
                "2026-06-08",
                text=report_text(
                    "MRI lumbar spine",
                    "L1 compression fracture on radiograph, assess acuity before kyphoplasty.",
                    "Sagittal T1, T2, STIR.",
                    "Radiographs 2026-06-01.",
                    "Moderate compression deformity of L1 with no marrow edema, consistent with an old healed fracture. "
                    "No other fracture.",
                    "Chronic L1 compression deformity; no MRI evidence of an acute fracture.",
                ),
            ),
        ],
        {
            "cards": 1,
            "indicator": "info",
            "recommendation": "refer",
            "suggestion": True,
            "referralSuggestion": True,
            "problemListSuggestion": False,
            "fractures": [
                {
                    "etiology": "osteoporotic",
                    "basis": "condition",
                    "level": "L1",
                    "region": "lumbar",
                    "diagnosedOn": "2026-06-01",
                    "ageDays": 14,
                    "evidence": [f"Condition/{sid}-fx"],
                }
            ],
            "imaging": {"acuityConfirmed": False},
            "contraindications": [
                {"code": "imaging-chronic", "kind": "not-advised", "evidence": [f"DiagnosticReport/{sid}-dr"]}
            ],
        },
    )
    n = 133
    sid = f"s{n}"
    scenario(
        n,
        "imaging-discordant-note",
        "Coded recent L1 fracture; the only spine MRI after it reports no fracture at all: imaging-discordant note",
        [
            "clinical-rules §7 imaging-discordant when the only spine MR after a coded recent fracture reports no fracture"
        ],
        [
            patient(sid, "Varga", "Erzsebet", "female", "1948-07-27"),
            osteoporosis(sid),
            condition(
                sid,
                "fx",
                ICD,
                "M80.08XA",
                "Age-related osteoporosis with current pathological fracture, vertebra(e), initial encounter for fracture",
                "2026-06-01",
                level="L1",
                category="encounter-diagnosis",
            ),
            diagnostic_report(
                sid,
                "dr",
                "mr-l",
                "2026-06-07",
                text=report_text(
                    "MRI lumbar spine",
                    "Coded L1 fracture, confirm before augmentation.",
                    "Sagittal T1, T2, STIR.",
                    "None.",
                    "Vertebral body heights are maintained. Normal marrow signal throughout. No compression fracture. "
                    "Mild facet arthropathy at L4-5.",
                    "No fracture of the lumbar spine.",
                ),
            ),
        ],
        {
            "cards": 1,
            "indicator": "info",
            "recommendation": "refer",
            "suggestion": True,
            "referralSuggestion": True,
            "problemListSuggestion": False,
            "fractures": [
                {
                    "etiology": "osteoporotic",
                    "basis": "condition",
                    "level": "L1",
                    "region": "lumbar",
                    "diagnosedOn": "2026-06-01",
                    "ageDays": 14,
                    "evidence": [f"Condition/{sid}-fx"],
                }
            ],
            "imaging": {"acuityConfirmed": False},
            "contraindications": [
                {
                    "code": "imaging-discordant",
                    "kind": "not-advised",
                    "evidence": [f"DiagnosticReport/{sid}-dr"],
                }
            ],
        },
    )
    n = 134
    sid = f"s{n}"
    scenario(
        n,
        "followup-unchanged-does-not-age",
        "Acute L1 fracture on MRI a month ago, follow-up radiograph 'unchanged': the follow-up does not age it; refer",
        [
            "clinical-rules §7 a follow-up saying 'unchanged' does not age a fracture reported acute last month"
        ],
        [
            patient(sid, "Costa", "Lucia", "female", "1946-05-25"),
            osteoporosis(sid),
            diagnostic_report(sid, "dr", "mr-l", "2026-05-18", text=ACUTE_L1_MR),
            diagnostic_report(
                sid,
                "dr2",
                "xr-l",
                "2026-06-12",
                text=report_text(
                    "XR lumbar spine, 2 views",
                    "Follow-up of L1 fracture.",
                    "AP and lateral views.",
                    "MRI 2026-05-18.",
                    "The L1 compression fracture is unchanged, with approximately 30% anterior height loss. No new fracture.",
                    "Unchanged L1 compression fracture.",
                ),
            ),
        ],
        refer(
            [
                report_fracture(
                    sid,
                    "L1",
                    "2026-05-18",
                    etiology="osteoporotic",
                    evidence=[f"DiagnosticReport/{sid}-dr", f"DiagnosticReport/{sid}-dr2"],
                )
            ],
            acuity=True,
        ),
    )
    n = 135
    sid = f"s{n}"
    scenario(
        n,
        "unqualified-ct-then-acute-mri",
        "Incidental L1 deformity on CT, then MRI shows marrow edema at L1: the acute report at the same level makes it a referral",
        [
            "clinical-rules §7 an acute report at the same level turns an unqualified finding into a referral card"
        ],
        [
            patient(sid, "Romano", "Teresa", "female", "1944-08-14"),
            osteoporosis(sid),
            diagnostic_report(
                sid,
                "dr",
                "ct-abd",
                "2026-06-01",
                text=report_text(
                    "CT abdomen and pelvis with contrast",
                    "Abdominal pain.",
                    "Axial images with reformats.",
                    "None.",
                    "Diverticulosis without diverticulitis. Bones: mild compression deformity of L1.",
                    "1. No acute abdominal process.\n2. Mild L1 compression deformity.",
                ),
            ),
            diagnostic_report(sid, "dr2", "mr-l", "2026-06-08", text=ACUTE_L1_MR),
        ],
        refer(
            [
                report_fracture(
                    sid,
                    "L1",
                    "2026-06-01",
                    etiology="osteoporotic",
                    evidence=[f"DiagnosticReport/{sid}-dr", f"DiagnosticReport/{sid}-dr2"],
                )
            ],
            acuity=True,
        ),
    )
    n = 136
    sid = f"s{n}"
    scenario(
        n,
        "unqualified-report-with-coded-fracture",
        "Coded recent T12 fracture plus a CT reporting a T12 compression deformity of unknown age: ordinary referral card",
        [
            "clinical-rules §7 a coded recent fracture at the same level makes an unqualified finding an ordinary referral"
        ],
        [
            patient(sid, "Baker", "Eileen", "female", "1943-01-19"),
            osteoporosis(sid),
            condition(
                sid,
                "fx",
                ICD,
                "M80.08XA",
                "Age-related osteoporosis with current pathological fracture, vertebra(e), initial encounter for fracture",
                "2026-06-02",
                level="T12",
                category="encounter-diagnosis",
            ),
            diagnostic_report(
                sid,
                "dr",
                "ct-t",
                "2026-06-03",
                text=report_text(
                    "CT thoracic spine",
                    "Back pain.",
                    "Axial images with reformats.",
                    "None.",
                    "Moderate compression deformity of T12 with 30% height loss. No retropulsion.",
                    "T12 compression deformity.",
                ),
            ),
        ],
        {
            "cards": 1,
            "indicator": "info",
            "recommendation": "refer",
            "suggestion": True,
            "referralSuggestion": True,
            "problemListSuggestion": False,
            "fractures": [
                {
                    "etiology": "osteoporotic",
                    "basis": "condition",
                    "level": "T12",
                    "region": "thoracic",
                    "diagnosedOn": "2026-06-02",
                    "ageDays": 13,
                    "evidence": [f"Condition/{sid}-fx", f"DiagnosticReport/{sid}-dr"],
                    "report": {"status": "final", "modality": "CT", "classification": "unqualified"},
                }
            ],
            "imaging": {"acuityConfirmed": False},
        },
    )
    n = 137
    sid = f"s{n}"
    scenario(
        n,
        "pathologic-metastases",
        "Bone metastases on record, no osteoporosis; MRI: acute L2 fracture with marrow edema: etiology pathologic",
        ["clinical-rules §7 etiology pathologic when a bone malignancy is on record and osteoporosis is not"],
        [
            patient(sid, "Grant", "Harold", "male", "1950-09-09"),
            condition(sid, "mets", ICD, "C79.51", "Secondary malignant neoplasm of bone", "2025-12-01"),
            diagnostic_report(
                sid,
                "dr",
                "mr-l",
                "2026-06-09",
                text=report_text(
                    "MRI lumbar spine with and without contrast",
                    "Prostate cancer with bone metastases, new back pain.",
                    "Sagittal T1, T2, STIR, post-contrast T1.",
                    "MRI 2025-12-01.",
                    "New acute compression fracture of L2 with marrow edema and 40% height loss. Known sclerotic metastases "
                    "in L4 and the sacrum, unchanged.",
                    "New acute L2 compression fracture.",
                ),
            ),
        ],
        refer([report_fracture(sid, "L2", "2026-06-09", etiology="pathologic")], acuity=True),
    )
    n = 138
    sid = f"s{n}"
    scenario(
        n,
        "contraindicated-keeps-problem-list",
        "Report-only acute L1 fracture with active sepsis: contraindicated warning, no referral, the problem-list suggestion stays",
        [
            "clinical-rules §7 a contraindicated card keeps the problem-list suggestion for a report-only fracture",
            "§5 infection absolute",
        ],
        [
            patient(sid, "Fox", "Dorothy", "female", "1941-04-01"),
            osteoporosis(sid),
            condition(
                sid,
                "sepsis",
                ICD,
                "A41.9",
                "Sepsis, unspecified organism",
                "2026-06-10",
                category="encounter-diagnosis",
            ),
            diagnostic_report(sid, "dr", "mr-l", "2026-06-05", text=ACUTE_L1_MR),
        ],
        {
            "cards": 1,
            "indicator": "warning",
            "recommendation": "contraindicated",
            "suggestion": True,
            "referralSuggestion": False,
            "problemListSuggestion": True,
            "fractures": [report_fracture(sid, "L1", "2026-06-05", etiology="osteoporotic")],
            "imaging": {"acuityConfirmed": True},
            "contraindications": [
                {"code": "infection", "kind": "absolute", "evidence": [f"Condition/{sid}-sepsis"]}
            ],
        },
    )
    n = 139
    sid = f"s{n}"
    scenario(
        n,
        "without-after-fracture",
        "CT: 'acute fracture of L1 without retropulsion': 'without' after the fracture words describes it; refer",
        ["clinical-rules §7 'with'/'without' after the fracture words do not negate it"],
        [
            patient(sid, "Young", "Patricia", "female", "1947-06-30"),
            osteoporosis(sid),
            diagnostic_report(
                sid,
                "dr",
                "ct-l",
                "2026-06-12",
                text=report_text(
                    "CT lumbar spine without contrast",
                    "Fall down two steps.",
                    "Axial images with reformats.",
                    "None.",
                    "Acute fracture of L1 without retropulsion or posterior element involvement, 25% height loss.",
                    "Acute L1 fracture without retropulsion.",
                ),
            ),
        ],
        refer(
            [report_fracture(sid, "L1", "2026-06-12", etiology="osteoporotic", modality="CT")], acuity=False
        ),
    )
    n = 140
    sid = f"s{n}"
    scenario(
        n,
        "compared-with-prior-not-chronic",
        "MRI: 'compared with prior MRI, there is a new L3 compression fracture': 'prior' is about the study, not the fracture",
        [
            "clinical-rules §7 'prior' counts as chronic only about the fracture itself, not in 'compared with prior'"
        ],
        [
            patient(sid, "King", "Barbara", "female", "1945-02-14"),
            osteoporosis(sid),
            diagnostic_report(
                sid,
                "dr",
                "mr-l",
                "2026-06-10",
                text=report_text(
                    "MRI lumbar spine",
                    "Back pain, known L1 fracture.",
                    "Sagittal T1, T2, STIR.",
                    "MRI 2026-01-10.",
                    "Compared with prior MRI, there is a new L3 compression fracture with marrow edema. The known chronic L1 "
                    "compression deformity is unchanged.",
                    "New acute L3 compression fracture. Chronic L1 deformity, unchanged.",
                ),
            ),
        ],
        refer([report_fracture(sid, "L3", "2026-06-10", etiology="osteoporotic")], acuity=True),
    )
    n = 141
    sid = f"s{n}"
    scenario(
        n,
        "unchanged-about-fracture",
        "Radiograph: 'compression deformity of L1, unchanged compared with prior': unchanged about the fracture = chronic; no card",
        ["clinical-rules §7 'unchanged' about the fracture itself is chronic"],
        [
            patient(sid, "Lopez", "Carmen", "female", "1944-11-03"),
            osteoporosis(sid),
            diagnostic_report(
                sid,
                "dr",
                "xr-l",
                "2026-06-10",
                text=report_text(
                    "XR lumbar spine, 2 views",
                    "Chronic back pain.",
                    "AP and lateral views.",
                    "Radiographs 2025-06-01.",
                    "Mild compression deformity of L1, unchanged compared with prior. No new fracture.",
                    "Stable mild L1 compression deformity.",
                ),
            ),
        ],
        NONE,
    )
    n = 142
    sid = f"s{n}"
    scenario(
        n,
        "old-v2-category-uri",
        "Report categorised with the older v2-0074 system URI (http://hl7.org/fhir/v2/0074 RAD): still a radiology report; acute T11 referred",
        ["clinical-rules §7 both the R4 and the older v2-0074 system URIs count for the category"],
        [
            patient(sid, "Hill", "Agnes", "female", "1940-03-29"),
            osteoporosis(sid),
            diagnostic_report(
                sid,
                "dr",
                "mr-t",
                "2026-06-06",
                category_system=OLD_V2_0074,
                text=report_text(
                    "MRI thoracic spine",
                    "Acute mid back pain.",
                    "Sagittal T1, T2, STIR.",
                    "None.",
                    "Acute compression fracture of T11 with marrow edema.",
                    "Acute T11 compression fracture.",
                ),
            ),
        ],
        refer([report_fracture(sid, "T11", "2026-06-06", etiology="osteoporotic")], acuity=True),
    )
    n = 143
    sid = f"s{n}"
    lab = diagnostic_report(
        sid,
        "dr",
        "lab",
        "2026-06-10",
        category="LAB",
        conclusion="Normocytic anaemia. Note: patient has acute L1 compression fracture per clinician.",
    )
    scenario(
        n,
        "not-a-radiology-report",
        "A laboratory DiagnosticReport whose conclusion mentions a fracture: not a radiology report, no card",
        ["clinical-rules §7 only radiology reports (category or imaging code) are read"],
        [patient(sid, "Price", "Edith", "female", "1946-12-01"), osteoporosis(sid), lab],
        NONE,
    )
    n = 144
    sid = f"s{n}"
    scenario(
        n,
        "effective-period-date",
        "Report dated by effectivePeriod.start only: acute L4 fracture, diagnosedOn from the period start",
        ["clinical-rules §7 date: effectiveDateTime, else effectivePeriod.start, else issued"],
        [
            patient(sid, "Ward", "Vera", "female", "1949-01-01"),
            osteoporosis(sid),
            diagnostic_report(
                sid,
                "dr",
                "mr-l",
                "2026-06-02",
                date_field="effectivePeriod",
                text=report_text(
                    "MRI lumbar spine",
                    "Back pain.",
                    "Sagittal T1, T2, STIR.",
                    "None.",
                    "Acute L4 compression fracture with marrow edema and 15% height loss.",
                    "Acute L4 compression fracture.",
                ),
            ),
        ],
        refer([report_fracture(sid, "L4", "2026-06-02", etiology="osteoporotic")], acuity=True),
    )
    n = 145
    sid = f"s{n}"
    scenario(
        n,
        "issued-date-only",
        "Report with only `issued`: acute L1 fracture in the conclusion, dated by issued",
        ["clinical-rules §7 date falls back to issued", "§7 text from conclusion"],
        [
            patient(sid, "Reid", "Mabel", "female", "1942-02-20"),
            osteoporosis(sid),
            diagnostic_report(
                sid,
                "dr",
                "xr-l",
                "2026-06-09",
                date_field="issued",
                conclusion="New L1 compression fracture since the radiograph of 2026-03-01, 30% height loss.",
            ),
        ],
        refer(
            [report_fracture(sid, "L1", "2026-06-09", etiology="osteoporotic", modality="XR")], acuity=False
        ),
    )
    n = 146
    sid = f"s{n}"
    scenario(
        n,
        "region-only-thoracolumbar",
        "CT: acute compression fracture at the thoracolumbar junction, level not named: region thoracolumbar, level omitted",
        ["clinical-rules §7 levels: a region (thoracolumbar junction)"],
        [
            patient(sid, "Shaw", "Irene", "female", "1943-07-17"),
            osteoporosis(sid),
            diagnostic_report(
                sid,
                "dr",
                "ct-t",
                "2026-06-11",
                text=report_text(
                    "CT chest, abdomen and pelvis (trauma)",
                    "Fall from standing.",
                    "Axial images with reformats.",
                    "None.",
                    "There is an acute compression fracture at the thoracolumbar junction with a fracture line through the "
                    "anterior cortex. No retropulsion. No rib fractures.",
                    "Acute thoracolumbar junction compression fracture.",
                ),
            ),
        ],
        refer(
            [
                report_fracture(
                    sid, None, "2026-06-11", etiology="osteoporotic", modality="CT", region="thoracolumbar"
                )
            ],
            acuity=False,
        ),
    )
    n = 147
    sid = f"s{n}"
    scenario(
        n,
        "age-indeterminate-ct",
        "CT: 'compression deformity of T9, age indeterminate; MRI could distinguish acute from chronic': unqualified, evaluate card",
        ["clinical-rules §7 otherwise unqualified: dated by the report, age unknown"],
        [
            patient(sid, "Burke", "Nora", "female", "1948-10-05"),
            osteoporosis(sid),
            diagnostic_report(
                sid,
                "dr",
                "ct-t",
                "2026-06-12",
                text=report_text(
                    "CT thoracic spine",
                    "Back pain.",
                    "Axial images with reformats.",
                    "None.",
                    "Mild compression deformity of T9, age indeterminate. No retropulsion.",
                    "T9 compression deformity of indeterminate age; MRI could distinguish acute from chronic fracture.",
                ),
            ),
        ],
        evaluate(
            [
                report_fracture(
                    sid,
                    "T9",
                    "2026-06-12",
                    etiology="osteoporotic",
                    modality="CT",
                    classification="unqualified",
                )
            ]
        ),
    )
    n = 148
    sid = f"s{n}"
    scenario(
        n,
        "garbage-attachments-and-good-conclusion",
        "Report with garbage attachments (binary base64, nested junk, an unknown charset) and a readable conclusion: the conclusion is read; acute L1 referred",
        ["clinical-rules §1a lenient reading: unreadable attachments skipped when other text exists"],
        [
            patient(sid, "Day", "Hilda", "female", "1941-05-12"),
            osteoporosis(sid),
            diagnostic_report(
                sid,
                "dr",
                "mr-l",
                "2026-06-10",
                conclusion="Acute L1 compression fracture with marrow edema, no retropulsion.",
                extra_form=[
                    {"contentType": "text/plain", "data": base64.b64encode(bytes(range(256))).decode()},
                    [[{"contentType": "text/plain"}]],
                    "junk",
                    {"contentType": "text/plain; charset=x-unknown", "data": "@@@"},
                ],
            ),
        ],
        refer([report_fracture(sid, "L1", "2026-06-10", etiology="osteoporotic")], acuity=True),
    )
    n = 149
    sid = f"s{n}"
    scenario(
        n,
        "negated-uncertain-mixed",
        "Bone scan: 'no abnormal uptake at the known T7 deformity; questionable uptake at L3, cannot exclude fracture': chronic and uncertain only, no card",
        ["clinical-rules §7 chronic ('no uptake', 'known') and uncertain ('cannot exclude') never trigger"],
        [
            patient(sid, "Ellis", "May", "female", "1944-09-23"),
            osteoporosis(sid),
            diagnostic_report(
                sid,
                "dr",
                "nm",
                "2026-06-08",
                text=report_text(
                    "NM bone scan whole body",
                    "Back pain, osteoporosis.",
                    "Whole body planar images after Tc-99m MDP.",
                    "None.",
                    "No abnormal uptake at the known T7 compression deformity. Questionable faint uptake at L3; a compression "
                    "fracture of L3 cannot be excluded.",
                    "Chronic T7 compression deformity. Cannot exclude early L3 fracture; MRI suggested.",
                ),
            ),
        ],
        NONE,
    )


def write() -> None:
    build()
    if OUT.exists():
        shutil.rmtree(OUT)
    for item in SCENARIOS:
        folder = OUT / f"{item['number']}-report-{item['slug']}"
        folder.mkdir(parents=True)
        sid = f"s{item['number']}"
        entries = [{"fullUrl": f"urn:uuid:{ident(sid, r['id'])}", "resource": r} for r in item["resources"]]
        bundle = {"resourceType": "Bundle", "id": f"{sid}-bundle", "type": "collection", "entry": entries}
        meta = {
            "description": item["description"],
            "asOf": AS_OF.isoformat(),
            "rules": item["rules"],
            "hook": "patient-view",
            "expected": item["expected"],
        }
        (folder / "bundle.json").write_text(json.dumps(bundle, indent=2, ensure_ascii=False) + "\n")
        (folder / "scenario.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {len(SCENARIOS)} scenarios to {OUT}")


if __name__ == "__main__":
    write()
