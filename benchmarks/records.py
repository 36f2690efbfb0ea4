"""Synthetic but realistic patient records for benchmarks: mostly unrelated Synthea-style
Conditions, some ImagingStudies, one recent L1 fracture with an MRI."""

from __future__ import annotations

import random
import uuid
from datetime import date, timedelta
from typing import Any

from cds_service.hooks.catalogue import REFERRAL

AS_OF = date(2026, 11, 23)
PATIENT_ID = "bench-patient"
NOISE = [
    ("http://snomed.info/sct", "59621000", "Essential hypertension (disorder)"),
    ("http://snomed.info/sct", "15777000", "Prediabetes (finding)"),
    ("http://snomed.info/sct", "44054006", "Diabetes mellitus type 2 (disorder)"),
    ("http://snomed.info/sct", "162864005", "Body mass index 30+ - obesity (finding)"),
    ("http://snomed.info/sct", "444814009", "Viral sinusitis (disorder)"),
    ("http://snomed.info/sct", "195662009", "Acute viral pharyngitis (disorder)"),
    ("http://snomed.info/sct", "10509002", "Acute bronchitis (disorder)"),
    ("http://snomed.info/sct", "271737000", "Anemia (disorder)"),
    ("http://snomed.info/sct", "55822004", "Hyperlipidemia (disorder)"),
    ("http://hl7.org/fhir/sid/icd-10-cm", "I10", "Essential (primary) hypertension"),
    ("http://hl7.org/fhir/sid/icd-10-cm", "E11.9", "Type 2 diabetes mellitus without complications"),
    ("http://hl7.org/fhir/sid/icd-10-cm", "J06.9", "Acute upper respiratory infection, unspecified"),
    ("http://hl7.org/fhir/sid/icd-10-cm", "M54.50", "Low back pain, unspecified"),
]


def _condition(rid: str, system: str, code: str, display: str, onset: date) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": rid,
        "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-condition"]},
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
                        "code": "encounter-diagnosis",
                        "display": "Encounter Diagnosis",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": system, "code": code, "display": display}], "text": display},
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "encounter": {"reference": f"Encounter/{uuid.uuid4()}"},
        "onsetDateTime": f"{onset.isoformat()}T09:30:00-05:00",
        "recordedDate": f"{onset.isoformat()}T09:30:00-05:00",
    }


def _study(rid: str, started: date, spine: bool) -> dict[str, Any]:
    dcm = "http://dicom.nema.org/resources/ontology/DCM"
    modality = "MR" if spine else "DX"
    return {
        "resourceType": "ImagingStudy",
        "id": rid,
        "status": "available",
        "subject": {"reference": f"Patient/{PATIENT_ID}"},
        "started": f"{started.isoformat()}T10:00:00Z",
        "modality": [{"system": dcm, "code": modality}],
        "description": "MRI lumbar spine without contrast" if spine else "XR chest 2 views",
        "numberOfSeries": 1,
        "numberOfInstances": 3,
        "series": [
            {
                "uid": f"1.2.840.99999.{random.randint(1, 10**9)}",
                "number": 1,
                "modality": {"system": dcm, "code": modality},
                "bodySite": {
                    "system": "http://snomed.info/sct",
                    "code": "122496007" if spine else "51185008",
                    "display": "Lumbar spine structure" if spine else "Thoracic structure",
                },
                "instance": [
                    {
                        "uid": f"1.2.840.99999.{random.randint(1, 10**9)}.{n}",
                        "sopClass": {
                            "system": "urn:ietf:rfc:3986",
                            "code": "urn:oid:1.2.840.10008.5.1.4.1.1.4",
                        },
                        "number": n,
                    }
                    for n in range(1, 4)
                ],
            }
        ],
    }


def _bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [
            {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": r, "search": {"mode": "match"}}
            for r in resources
        ],
    }


def _fracture(rid: str, onset: date) -> dict[str, Any]:
    fracture = _condition(
        rid, "http://hl7.org/fhir/sid/icd-10-cm", "M80.08XA", "Osteoporotic fracture of vertebra", onset
    )
    fracture["bodySite"] = [
        {"coding": [{"system": "http://snomed.info/sct", "code": "66794005", "display": "L1"}]}
    ]
    return fracture


def _request(conditions: list[dict[str, Any]], imaging: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "fhirServer": "https://ehr.example.org/fhir",
        "context": {"userId": "Practitioner/bench", "patientId": PATIENT_ID},
        "prefetch": {
            # Full prefetch, as an EHR sends it: the keys a record does not fill are empty searches.
            **{key: _bundle([]) for key in REFERRAL.prefetch},
            "patient": {
                "resourceType": "Patient",
                "id": PATIENT_ID,
                "birthDate": "1946-04-01",
                "gender": "female",
            },
            "conditions": _bundle(conditions),
            "imaging": _bundle(imaging),
        },
    }


def repeated_diagnoses_request(seed: int = 7, as_of: date = AS_OF) -> dict[str, Any]:
    """150 encounter diagnoses of one L1 fracture (one per visit, as EHRs emit them) among 300
    Conditions: every one of them is relevant."""
    rng = random.Random(seed)
    noise = [
        _condition(f"c{i}", *rng.choice(NOISE), as_of - timedelta(days=rng.randint(30, 9000)))
        for i in range(150)
    ]
    visits = [_fracture(f"fx{i}", as_of - timedelta(days=20 + i % 30)) for i in range(150)]
    return _request(noise + visits, [_study("i0", as_of - timedelta(days=18), spine=True)])


def spine_studies_request(seed: int = 7, as_of: date = AS_OF) -> dict[str, Any]:
    """200 spine MR / CT studies among 2,000 Conditions (a patient followed for years)."""
    rng = random.Random(seed)
    random.seed(seed)
    conditions = [
        _condition(f"c{i}", *rng.choice(NOISE), as_of - timedelta(days=rng.randint(30, 9000)))
        for i in range(1_999)
    ]
    conditions.append(_fracture("fx", as_of - timedelta(days=20)))
    studies = []
    for i in range(200):
        study = _study(f"i{i}", as_of - timedelta(days=rng.randint(1, 4000)), spine=True)
        if i % 2:
            study["modality"][0]["code"] = "CT"
            study["series"][0]["modality"]["code"] = "CT"
            study["description"] = "CT lumbar spine without contrast"
        studies.append(study)
    studies[0]["started"] = f"{(as_of - timedelta(days=18)).isoformat()}T10:00:00Z"
    return _request(conditions, studies)


def reports_request(seed: int = 7, as_of: date = AS_OF) -> dict[str, Any]:
    """100 Conditions (osteoporosis among them) and 50 radiology reports of ~3 kB each, 5 of them
    spine, taken over five years as a patient followed for years has them; the spine MRI of 10 days
    ago (acute L1) carries the only fracture."""
    from bench_report_text import make_reports

    rng = random.Random(seed)
    conditions = [
        _condition(f"c{i}", *rng.choice(NOISE), as_of - timedelta(days=rng.randint(30, 9000)))
        for i in range(99)
    ]
    conditions.append(
        _condition(
            "op", "http://hl7.org/fhir/sid/icd-10-cm", "M81.0", "Age-related osteoporosis", date(2019, 5, 1)
        )
    )
    reports = []
    for index, (conclusion, forms, titles) in enumerate(make_reports()):
        reports.append(
            {
                "resourceType": "DiagnosticReport",
                "id": f"dr{index}",
                "status": "final",
                "category": [
                    {"coding": [{"system": "http://loinc.org", "code": "LP29684-5", "display": "Radiology"}]}
                ],
                "code": {"text": titles[0]},
                "subject": {"reference": f"Patient/{PATIENT_ID}"},
                "effectiveDateTime": f"{(as_of - timedelta(days=10 + index * 37)).isoformat()}T08:00:00Z",
                "conclusion": conclusion,
                "presentedForm": forms,
            }
        )
    request = _request(conditions, [])
    request["prefetch"]["reports"] = _bundle(reports)
    return request


def patient_view_request(size: int, seed: int = 7, as_of: date = AS_OF) -> dict[str, Any]:
    """A full-prefetch patient-view request whose record holds `size` resources, dated around `as_of`."""
    rng = random.Random(seed)
    random.seed(seed)
    studies = max(1, size // 20)
    conditions = [
        _condition(f"c{i}", *rng.choice(NOISE), as_of - timedelta(days=rng.randint(30, 9000)))
        for i in range(size - studies - 2)
    ]
    conditions.append(_fracture("fx", as_of - timedelta(days=20)))
    imaging = [
        _study(f"i{i}", as_of - timedelta(days=rng.randint(1, 4000)), spine=(i == 0)) for i in range(studies)
    ]
    imaging[0]["started"] = f"{(as_of - timedelta(days=18)).isoformat()}T10:00:00Z"
    return _request(conditions, imaging)
