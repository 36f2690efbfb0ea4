"""clinical-rules §3 and §5 beyond Condition: prior augmentation, existing referrals,
anticoagulant medications, material allergies; each data type optional."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from support.builders import PATIENT_ID, REFERRAL_URL, SCT, Call, condition, finding, hook_body

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CPT = "http://www.ama-assn.org/go/cpt"
PCS = "http://www.cms.gov/Medicare/Coding/ICD10"
FRACTURE = condition("fx", "M80.08XA", onset="2026-11-01")
SUBJECT = {"reference": f"Patient/{PATIENT_ID}"}


def procedure(
    rid: str, code: dict[str, Any], *, status: str = "completed", performed: str | None = "2026-11-10"
) -> Any:
    resource: dict[str, Any] = {
        "resourceType": "Procedure",
        "id": rid,
        "status": status,
        "subject": SUBJECT,
        "code": code,
    }
    if performed:
        resource["performedDateTime"] = performed
    return resource


def referral(
    rid: str, code: dict[str, Any], *, status: str = "active", authored: str | None = "2026-11-05"
) -> Any:
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": rid,
        "status": status,
        "intent": "order",
        "subject": SUBJECT,
        "code": code,
    }
    if authored:
        resource["authoredOn"] = authored
    return resource


def med_request(rid: str, concept: dict[str, Any], *, status: str = "active") -> Any:
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": status,
        "intent": "order",
        "subject": SUBJECT,
        "authoredOn": "2025-06-01",
        "medicationCodeableConcept": concept,
    }


def allergy(rid: str, code: dict[str, Any], **extra: Any) -> Any:
    return {"resourceType": "AllergyIntolerance", "id": rid, "patient": SUBJECT, "code": code, **extra}


KYPHOPLASTY_CPT = {"coding": [{"system": CPT, "code": "22514"}]}


def codes_of(answer: dict[str, Any]) -> list[str]:
    return [c["code"] for c in finding(answer).get("contraindications", [])]


# §3 suppression ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        {"coding": [{"system": CPT, "code": "22513"}]},
        {"coding": [{"system": CPT, "code": "22510"}]},
        {"coding": [{"system": PCS, "code": "0QU03JZ"}]},
        {"coding": [{"system": PCS, "code": "0PU43JZ"}]},
        {"text": "Balloon kyphoplasty L1"},
        {"coding": [{"system": "urn:local", "code": "X1", "display": "Percutaneous vertebroplasty"}]},
        {"text": "Vertebral augmentation, lumbar"},
    ],
)
def test_augmentation_procedure_after_fracture_silences_card(call: Call, code: dict[str, Any]) -> None:
    assert call([FRACTURE], procedures=[procedure("proc", code)])["cards"] == []


@pytest.mark.parametrize("status", ["completed", "in-progress"])
def test_counting_procedure_statuses(call: Call, status: str) -> None:
    assert call([FRACTURE], procedures=[procedure("proc", KYPHOPLASTY_CPT, status=status)])["cards"] == []


@pytest.mark.parametrize("status", ["preparation", "not-done", "stopped", "entered-in-error", "on-hold"])
def test_procedure_not_done_does_not_silence(call: Call, status: str) -> None:
    assert len(call([FRACTURE], procedures=[procedure("proc", KYPHOPLASTY_CPT, status=status)])["cards"]) == 1


def test_procedure_before_the_fracture_does_not_silence(call: Call) -> None:
    answer = call([FRACTURE], procedures=[procedure("proc", KYPHOPLASTY_CPT, performed="2026-10-31")])
    assert len(answer["cards"]) == 1


def test_procedure_on_the_fracture_day_silences(call: Call) -> None:
    assert (
        call([FRACTURE], procedures=[procedure("proc", KYPHOPLASTY_CPT, performed="2026-11-01")])["cards"]
        == []
    )


def test_procedure_period_start_is_its_date(call: Call) -> None:
    proc = procedure("proc", KYPHOPLASTY_CPT, performed=None)
    proc["performedPeriod"] = {"start": "2026-11-12", "end": "2026-11-12"}
    assert call([FRACTURE], procedures=[proc])["cards"] == []


def test_undated_procedure_does_not_silence_but_is_mentioned(call: Call) -> None:
    answer = call([FRACTURE], procedures=[procedure("proc", {"text": "Kyphoplasty"}, performed=None)])
    detail = answer["cards"][0]["detail"]
    assert "Undated vertebral augmentation or referral on record" in detail
    assert "Kyphoplasty" in detail


def test_unrelated_procedure_does_not_silence(call: Call) -> None:
    other = procedure(
        "proc", {"coding": [{"system": CPT, "code": "27130"}], "text": "Total hip arthroplasty"}
    )
    assert len(call([FRACTURE], procedures=[other])["cards"]) == 1


def test_procedure_for_an_older_fracture_leaves_the_new_one(call: Call) -> None:
    old = condition("old", "M80.08XA", onset="2026-10-01", bodySite=[{"text": "T12"}])
    new = condition("new", "M80.08XA", onset="2026-11-15", bodySite=[{"text": "L2"}])
    answer = call([old, new], procedures=[procedure("proc", KYPHOPLASTY_CPT, performed="2026-10-10")])
    assert len(answer["cards"]) == 1


@pytest.mark.parametrize("status", ["active", "completed"])
def test_augmentation_referral_after_fracture_silences(call: Call, status: str) -> None:
    sr = referral("sr", {"text": "Referral to interventional radiology for kyphoplasty"}, status=status)
    assert call([FRACTURE], servicerequests=[sr])["cards"] == []


def test_our_own_suggested_referral_silences_once_placed(call: Call) -> None:
    suggested = call([FRACTURE])["cards"][0]["suggestions"][0]["actions"][0]["resource"]
    placed = dict(suggested, id="placed", status="active", authoredOn="2026-11-20")
    assert call([FRACTURE], servicerequests=[placed])["cards"] == []


@pytest.mark.parametrize("status", ["draft", "revoked", "entered-in-error", "on-hold"])
def test_referral_not_active_does_not_silence(call: Call, status: str) -> None:
    sr = referral("sr", KYPHOPLASTY_CPT, status=status)
    assert len(call([FRACTURE], servicerequests=[sr])["cards"]) == 1


def test_referral_before_fracture_or_unrelated_does_not_silence(call: Call) -> None:
    before = referral("sr1", KYPHOPLASTY_CPT, authored="2026-10-20")
    unrelated = referral("sr2", {"text": "Referral to physiotherapy"})
    assert len(call([FRACTURE], servicerequests=[before, unrelated])["cards"]) == 1


def test_undated_referral_is_mentioned(call: Call) -> None:
    answer = call([FRACTURE], servicerequests=[referral("sr", KYPHOPLASTY_CPT, authored=None)])
    assert "Undated vertebral augmentation or referral" in answer["cards"][0]["detail"]


# §5 anticoagulation and material allergy ------------------------------------------------------


@pytest.mark.parametrize(
    "concept",
    [
        {"coding": [{"system": RXNORM, "code": "855332", "display": "warfarin sodium 5 MG Oral Tablet"}]},
        {"coding": [{"system": RXNORM, "code": "11289"}]},
        {"coding": [{"system": RXNORM, "code": "999999", "display": "Apixaban 5 MG Oral Tablet [Eliquis]"}]},
        {"text": "Xarelto 20 mg daily"},
        {"text": "enoxaparin 40 mg subcutaneous"},
        {"text": "Clopidogrel 75 mg"},
        {"text": "dabigatran etexilate 150 mg"},
        {"text": "heparin 5000 units SC"},
        {"text": "fondaparinux 2.5 mg"},
        {"text": "edoxaban 60 mg"},
    ],
)
def test_active_anticoagulant_order_is_relative_note(call: Call, concept: dict[str, Any]) -> None:
    answer = call([FRACTURE], medicationrequests=[med_request("mr", concept)])
    found = finding(answer)
    assert found["contraindications"] == [
        {"code": "anticoagulation", "kind": "relative", "evidence": ["MedicationRequest/mr"]}
    ]
    assert "Hold or bridge" in answer["cards"][0]["detail"]
    assert answer["cards"][0]["indicator"] == "info"


@pytest.mark.parametrize("status", ["stopped", "completed", "cancelled", "entered-in-error", "draft"])
def test_inactive_anticoagulant_order_does_not_count(call: Call, status: str) -> None:
    concept = {"text": "warfarin 5 mg"}
    assert codes_of(call([FRACTURE], medicationrequests=[med_request("mr", concept, status=status)])) == []


def test_non_anticoagulant_medication_does_not_count(call: Call) -> None:
    concept = {"coding": [{"system": RXNORM, "code": "197361", "display": "Amlodipine 5 MG Oral Tablet"}]}
    assert codes_of(call([FRACTURE], medicationrequests=[med_request("mr", concept)])) == []


def test_medication_statement_and_contained_medication(call: Call) -> None:
    statement = {
        "resourceType": "MedicationStatement",
        "id": "ms",
        "status": "active",
        "subject": SUBJECT,
        "effectivePeriod": {"start": "2024-01-01"},
        "contained": [{"resourceType": "Medication", "id": "m1", "code": {"text": "Eliquis 5 mg tablet"}}],
        "medicationReference": {"reference": "#m1"},
    }
    found = finding(call([FRACTURE], medicationstatements=[statement]))
    assert found["contraindications"][0]["evidence"] == ["MedicationStatement/ms"]


def test_anticoagulation_from_condition_and_medication_join(call: Call) -> None:
    answer = call(
        [FRACTURE, condition("z", "Z79.01")], medicationrequests=[med_request("mr", {"text": "warfarin"})]
    )
    assert finding(answer).get("contraindications", []) == [
        {"code": "anticoagulation", "kind": "relative", "evidence": ["Condition/z", "MedicationRequest/mr"]}
    ]


@pytest.mark.parametrize(
    "code",
    [
        {"coding": [{"system": SCT, "code": "426722004", "display": "Iodinated contrast media"}]},
        {"text": "Bone cement (PMMA)"},
        {"text": "Methyl methacrylate"},
        {"text": "Iodinated contrast"},
    ],
)
def test_material_allergy_is_relative_note(call: Call, code: dict[str, Any]) -> None:
    answer = call([FRACTURE], allergies=[allergy("al", code)])
    assert finding(answer).get("contraindications", []) == [
        {"code": "material-allergy", "kind": "relative", "evidence": ["AllergyIntolerance/al"]}
    ]
    assert "cement" in answer["cards"][0]["detail"]


def test_material_allergy_by_reaction_substance(call: Call) -> None:
    al = allergy("al", {"text": "Contrast reaction"})
    al["reaction"] = [{"substance": {"text": "iodinated contrast"}, "manifestation": [{"text": "hives"}]}]
    assert codes_of(call([FRACTURE], allergies=[al])) == ["material-allergy"]


@pytest.mark.parametrize(
    "extra",
    [
        {"verificationStatus": {"coding": [{"code": "refuted"}]}},
        {"verificationStatus": {"coding": [{"code": "entered-in-error"}]}},
        {"clinicalStatus": {"coding": [{"code": "resolved"}]}},
        {"clinicalStatus": {"coding": [{"code": "inactive"}]}},
    ],
)
def test_allergy_not_active_or_refuted_does_not_count(call: Call, extra: dict[str, Any]) -> None:
    assert codes_of(call([FRACTURE], allergies=[allergy("al", {"text": "bone cement"}, **extra)])) == []


def test_unrelated_allergy_does_not_count(call: Call) -> None:
    assert codes_of(call([FRACTURE], allergies=[allergy("al", {"text": "Penicillin"})])) == []


def test_malformed_medication_and_allergy_are_skipped(call: Call) -> None:
    bad_med = dict(med_request("mr", {"text": "warfarin"}), authoredOn="yesterday")
    bad_allergy = allergy("al", {"text": "bone cement"}, onsetDateTime="soon")
    assert codes_of(call([FRACTURE], medicationrequests=[bad_med], allergies=[bad_allergy])) == []


# optional data ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "resource_type", "said"),
    [
        ("procedures", "Procedure", "prior vertebral augmentation"),
        ("servicerequests", "ServiceRequest", "existing referrals"),
        ("medicationrequests", "MedicationRequest", "medication orders"),
        ("medicationstatements", "MedicationStatement", "medication list"),
        ("allergies", "AllergyIntolerance", "allergies"),
    ],
)
def test_each_wider_type_is_optional_and_said_when_missing(
    client: FlaskClient, key: str, resource_type: str, said: str
) -> None:
    body = hook_body([FRACTURE])
    body["prefetch"][key] = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "timeout"}],
    }
    card = client.post(REFERRAL_URL, json=body).get_json()["cards"][0]
    assert card["extension"]["vertebral-augmentation-cds/finding"]["dataUnavailable"] == [resource_type]
    assert "Not checked, data unavailable" in card["detail"]
    assert said in card["detail"]


def test_partly_treated_fractures_are_said_and_leave_the_referral_reasons(call: Call) -> None:
    old = condition("old", "M80.08XA", onset="2026-10-01", bodySite=[{"text": "T12"}])
    new = condition("new", "M80.08XA", onset="2026-11-15", bodySite=[{"text": "L2"}])
    kyphoplasty = procedure("proc", {"text": "Kyphoplasty T12"}, performed="2026-10-10")
    card = call([old, new], procedures=[kyphoplasty])["cards"][0]
    assert "Already treated or referred: T12 (Kyphoplasty T12, 2026-10-10)" in card["detail"]
    resource = card["suggestions"][0]["actions"][0]["resource"]
    assert resource["reasonReference"] == [{"reference": "Condition/new"}]
