"""Every rule of clinical-rules.md §1–§6 through the HTTP API, one small record at a time.

The evaluation day is 2026-11-23 (conftest); the default fracture onset is 2026-11-01 (22 days).
"""

from __future__ import annotations

from typing import Any

import pytest
from support.builders import ICD, SCT, Call, condition, finding, study

CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
OSTEOPOROSIS = condition("op", "M81.0", onset="2019-05-01")


def status(code: str, system: str = CLINICAL) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def cards(answer: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = answer["cards"]
    return result


# §1 Reading the record --------------------------------------------------------------------------


@pytest.mark.parametrize("clinical", [None, "active", "recurrence", "relapse"])
def test_counting_clinical_statuses_trigger(call: Call, clinical: str | None) -> None:
    extra = {"clinicalStatus": status(clinical)} if clinical else {}
    assert len(cards(call([condition("fx", "M80.08XA", **extra)]))) == 1


@pytest.mark.parametrize("clinical", ["inactive", "remission", "resolved"])
def test_non_counting_clinical_statuses_are_silent(call: Call, clinical: str) -> None:
    assert cards(call([condition("fx", "M80.08XA", clinicalStatus=status(clinical))])) == []


@pytest.mark.parametrize(
    "verification", ["refuted", "entered-in-error", "unconfirmed", "provisional", "differential"]
)
def test_non_confirmed_verification_is_silent(call: Call, verification: str) -> None:
    fx = condition("fx", "M80.08XA", verificationStatus=status(verification, VERIFICATION))
    assert cards(call([fx])) == []


def test_confirmed_verification_triggers(call: Call) -> None:
    fx = condition("fx", "M80.08XA", verificationStatus=status("confirmed", VERIFICATION))
    assert len(cards(call([fx]))) == 1


@pytest.mark.parametrize(
    ("abatement", "silent"),
    [
        ({"abatementDateTime": "2026-11-10"}, True),
        ({"abatementDateTime": "2026-12-30"}, False),
        ({"abatementPeriod": {"start": "2026-11-05", "end": "2026-11-10"}}, True),
        ({"abatementPeriod": {"start": "2026-11-05", "end": "2027-01-10"}}, False),
        ({"abatementString": "healed"}, True),
        ({"abatementBoolean": True}, True),
        ({"abatementBoolean": False}, False),
        (
            {"abatementAge": {"value": 70, "unit": "a", "system": "http://unitsofmeasure.org", "code": "a"}},
            True,
        ),
        (
            {"abatementAge": {"value": 90, "unit": "a", "system": "http://unitsofmeasure.org", "code": "a"}},
            False,
        ),
    ],
)
def test_abatement(call: Call, abatement: dict[str, Any], silent: bool) -> None:
    answer = call([condition("fx", "M80.08XA", **abatement)])  # patient born 1950-01-01
    assert (cards(answer) == []) is silent


@pytest.mark.parametrize("code", ["M80.08XA", "M8008XA", "m80.08xa", "M80.08xA"])
def test_codes_compare_normalised(call: Call, code: str) -> None:
    assert len(cards(call([condition("fx", code)]))) == 1


def test_code_and_system_with_blanks_are_trimmed(call: Call) -> None:
    """§1a (revision 2): surrounding whitespace in codes and systems is trimmed, not a reason to skip."""
    fx = condition("fx", " M80.08XA ", system=" http://hl7.org/fhir/sid/icd-10-cm ")
    assert len(cards(call([fx]))) == 1


def test_unknown_system_is_ignored_not_an_error(call: Call) -> None:
    assert cards(call([condition("fx", "M80.08XA", system="http://example.org/local-codes")])) == []


def test_other_systems_beside_a_known_code_do_not_matter(call: Call) -> None:
    fx = condition("fx", "M80.08XA")
    fx["code"]["coding"].insert(0, {"system": "urn:oid:1.2.3", "code": "LOCAL-9"})
    assert len(cards(call([fx]))) == 1


@pytest.mark.parametrize(
    ("dates", "diagnosed"),
    [
        ({"onset": "2026-11-01"}, "2026-11-01"),
        ({"onset": "2026-11-01T23:30:00-05:00"}, "2026-11-01"),
        ({"onset": None, "onsetPeriod": {"start": "2026-11-02"}}, "2026-11-02"),
        (
            {
                "onset": None,
                "onsetAge": {"value": 76, "unit": "a", "code": "a"},
                "recordedDate": "2026-11-20",
            },
            None,
        ),
        ({"onset": None, "recordedDate": "2026-11-05"}, "2026-11-05"),
        ({"onset": "2026-10", "recordedDate": "2026-11-20"}, "2026-10-01"),
    ],
)
def test_fracture_date_sources(call: Call, dates: dict[str, Any], diagnosed: str | None) -> None:
    onset = dates.pop("onset")
    answer = call([condition("fx", "M80.08XA", onset=onset, **dates)])
    if diagnosed is None:  # onsetAge 76 from 1950-01-01 = 2026-01-01: older than 60 days
        assert cards(answer) == []
    else:
        assert finding(answer)["fractures"][0]["diagnosedOn"] == diagnosed


def test_onset_age_recent_from_birth_date(call: Call) -> None:
    patient = {"resourceType": "Patient", "id": "p1", "birthDate": "1950-10-01"}
    answer = call(
        [condition("fx", "M80.08XA", onset=None, onsetAge={"value": 76, "unit": "a"})], patient=patient
    )
    assert finding(answer)["fractures"][0]["diagnosedOn"] == "2026-10-01"


def test_onset_age_without_birth_date_falls_back_to_recorded_date(call: Call) -> None:
    patient = {"resourceType": "Patient", "id": "p1"}
    fx = condition(
        "fx", "M80.08XA", onset=None, onsetAge={"value": 76, "unit": "a"}, recordedDate="2026-11-11"
    )
    assert finding(call([fx], patient=patient))["fractures"][0]["diagnosedOn"] == "2026-11-11"


def test_no_date_is_not_recent(call: Call) -> None:
    assert cards(call([condition("fx", "M80.08XA", onset=None)])) == []


@pytest.mark.parametrize(("onset", "has_card"), [("2026-09-24", True), ("2026-09-23", False)])
def test_window_boundary_is_inclusive_at_60_days(call: Call, onset: str, has_card: bool) -> None:
    answer = call([condition("fx", "M80.08XA", onset=onset)])
    assert (len(cards(answer)) == 1) is has_card
    if has_card:
        assert finding(answer)["fractures"][0]["ageDays"] == 60


def test_recent_days_is_configurable() -> None:
    from support.builders import AS_OF, REFERRAL_URL, hook_body

    from cds_service.app import create_app

    body = hook_body([condition("fx", "M80.08XA", onset="2026-08-01")])
    app = create_app(clock=lambda: AS_OF, recent_days=120, auth="off")
    assert len(app.test_client().post(REFERRAL_URL, json=body).get_json()["cards"]) == 1


@pytest.mark.parametrize(("onset", "has_card"), [("2026-11-24", True), ("2026-11-25", False)])
def test_future_dates_beyond_one_day_are_ignored(call: Call, onset: str, has_card: bool) -> None:
    assert (len(cards(call([condition("fx", "M80.08XA", onset=onset)]))) == 1) is has_card


@pytest.mark.parametrize("broken", [{"onsetDateTime": "not-a-date"}, {"onsetAge": {"value": "old"}}])
def test_fracture_with_unreadable_date_is_counted_and_named(call: Call, broken: dict[str, Any]) -> None:
    """§1a: a needed element that cannot be read makes the resource unreadable: not evidence, but
    counted in the finding and named on the card."""
    bad = condition("bad", "M80.08XA", **broken)
    good = condition("good", "M80.88XA", onset="2026-11-10")
    answer = call([bad, good])
    assert finding(answer)["fractures"][0]["evidence"] == ["Condition/good"]
    assert finding(answer)["unreadable"] == {"Condition": 1}
    assert "could not be read" in answer["cards"][0]["detail"]


@pytest.mark.parametrize(
    "lenient",
    [
        {"clinicalStatus": "active"},  # DSTU2 era: a bare status word
        {"clinicalStatus": {"text": "Active"}},  # text only, one of the status words
        {"subject": "Patient/p1"},  # a wrong type where nothing the rules need is lost
        {"bodySite": {"text": "L1"}},  # one concept where a list belongs
        {"note": "free text"},  # an unused element of the wrong type
        {"onsetDateTime": "2026-11-01T14:30:00"},  # a dateTime without a zone: its calendar date
    ],
)
def test_fracture_read_leniently_where_a_careful_reader_would(call: Call, lenient: dict[str, Any]) -> None:
    fx = condition("fx", "M80.08XA", **lenient)
    found = finding(call([fx]))
    assert found["fractures"][0]["evidence"] == ["Condition/fx"]
    assert "unreadable" not in found


def test_malformed_code_shapes_never_fail(call: Call) -> None:
    odd = [
        {"resourceType": "Condition", "id": "a", "code": "M80.08XA"},
        {"resourceType": "Condition", "id": "b", "code": {"coding": "M80.08XA"}},
        {"resourceType": "Condition", "id": "c", "code": {"coding": [None, 3, {"system": 1, "code": []}]}},
        {"resourceType": "Condition"},
    ]
    assert cards(call(odd)) == []


# §2 Triggers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "system", "region"),
    [
        ("M80.08XA", ICD, None),
        ("M80.88XA", ICD, None),
        ("203450003", SCT, "lumbar"),
        ("203451004", SCT, "thoracic"),
        ("240198002", SCT, None),
        ("311890007", SCT, "lumbar"),
        ("311891006", SCT, "thoracic"),
    ],
)
def test_direct_osteoporotic_triggers(call: Call, code: str, system: str, region: str | None) -> None:
    fx = finding(call([condition("fx", code, system)]))["fractures"][0]
    assert (fx["etiology"], fx["basis"], fx.get("region")) == ("osteoporotic", "condition", region)


@pytest.mark.parametrize("seventh", ["D", "G", "K", "P", "S"])
def test_follow_up_encounters_never_trigger(call: Call, seventh: str) -> None:
    assert cards(call([condition("fx", f"M80.08X{seventh}")])) == []


@pytest.mark.parametrize(
    ("code", "region"),
    [
        ("M48.50XA", None),
        ("M48.53XA", "cervicothoracic"),
        ("M48.54XA", "thoracic"),
        ("M48.55XA", "thoracolumbar"),
        ("M48.56XA", "lumbar"),
        ("M48.57XA", "lumbosacral"),
    ],
)
def test_collapsed_vertebra_with_osteoporosis_is_osteoporotic(
    call: Call, code: str, region: str | None
) -> None:
    fx = finding(call([condition("fx", code), OSTEOPOROSIS]))["fractures"][0]
    assert (fx["etiology"], fx.get("region")) == ("osteoporotic", region)


def test_collapsed_vertebra_alone_is_silent(call: Call) -> None:
    assert cards(call([condition("fx", "M48.56XA")])) == []


@pytest.mark.parametrize(
    ("code", "system"), [("64859006", SCT), ("M81.0", ICD), ("M80.00XD", ICD), ("203448006", SCT)]
)
def test_any_osteoporosis_code_enables_conditional_triggers(call: Call, code: str, system: str) -> None:
    answer = call([condition("fx", "M48.54XA"), condition("op", code, system, onset="2015-01-01")])
    assert finding(answer)["fractures"][0]["etiology"] == "osteoporotic"


def test_osteoporosis_that_does_not_count_does_not_enable(call: Call) -> None:
    refuted = condition("op", "M81.0", verificationStatus=status("refuted", VERIFICATION))
    assert cards(call([condition("fx", "M48.54XA"), refuted])) == []


@pytest.mark.parametrize("code", ["M48.51XA", "M48.52XA", "M48.58XA", "S12.000A", "S12.100A"])
def test_cervical_and_sacral_icd_never_trigger(call: Call, code: str) -> None:
    assert cards(call([condition("fx", code), OSTEOPOROSIS])) == []


@pytest.mark.parametrize("code", ["203452006", "311806008"])
def test_cervical_snomed_never_triggers(call: Call, code: str) -> None:
    assert cards(call([condition("fx", code, SCT), OSTEOPOROSIS])) == []


@pytest.mark.parametrize(
    ("code", "level", "region"),
    [
        ("S22.000A", None, "thoracic"),
        ("S22.010A", "T1", "thoracic"),
        ("S22.048A", "T4", "thoracic"),
        ("S22.080A", None, "thoracic"),
        ("S32.010A", "L1", "lumbar"),
        ("S32.059A", "L5", "lumbar"),
        ("S32.000A", None, "lumbar"),
    ],
)
def test_closed_traumatic_fracture_with_osteoporosis(
    call: Call, code: str, level: str | None, region: str
) -> None:
    fx = finding(call([condition("fx", code), OSTEOPOROSIS]))["fractures"][0]
    assert (fx.get("level"), fx.get("region"), fx["etiology"]) == (level, region, "osteoporotic")


@pytest.mark.parametrize("code", ["S32.010A", "S22.000A"])
def test_traumatic_fracture_without_osteoporosis_is_silent(call: Call, code: str) -> None:
    assert cards(call([condition("fx", code)])) == []


@pytest.mark.parametrize("code", ["S32.010B", "S22.000B", "S32.010D"])
def test_open_or_follow_up_traumatic_fracture_never_triggers(call: Call, code: str) -> None:
    assert cards(call([condition("fx", code), OSTEOPOROSIS])) == []


LUMBAR_SITE = [{"coding": [{"system": SCT, "code": "122496007", "display": "Lumbar spine structure"}]}]
L2_SITE = [{"coding": [{"system": SCT, "code": "14293000", "display": "L2 vertebra"}]}]
SPINE_SITE = [{"coding": [{"system": SCT, "code": "421060004"}]}]
CHEST_SITE = [{"coding": [{"system": SCT, "code": "51185008", "display": "Thoracic structure"}]}]


def test_vertebral_column_fracture_needs_osteoporosis_and_thoracolumbar_site(call: Call) -> None:
    fx = condition("fx", "15724005", SCT, bodySite=LUMBAR_SITE)
    assert finding(call([fx, OSTEOPOROSIS]))["fractures"][0]["region"] == "lumbar"
    assert cards(call([fx])) == []


def test_vertebral_column_fracture_with_level_site(call: Call) -> None:
    fx = condition("fx", "15724005", SCT, bodySite=L2_SITE)
    assert finding(call([fx, OSTEOPOROSIS]))["fractures"][0]["level"] == "L2"


def test_vertebral_column_fracture_generic_spine_site_is_not_enough(call: Call) -> None:
    fx = condition("fx", "15724005", SCT, bodySite=SPINE_SITE)
    assert cards(call([fx, OSTEOPOROSIS])) == []


def test_vertebral_column_fracture_with_spine_imaging_in_window(call: Call) -> None:
    fx = condition("fx", "15724005", SCT)
    assert len(cards(call([fx, OSTEOPOROSIS], [study("mr", started="2026-11-02")]))) == 1
    assert cards(call([fx, OSTEOPOROSIS], [study("mr", started="2026-09-20")])) == []


def test_fracture_with_cord_injury_never_triggers(call: Call) -> None:
    assert cards(call([condition("fx", "1734006", SCT, bodySite=LUMBAR_SITE), OSTEOPOROSIS])) == []


@pytest.mark.parametrize(
    ("body_site", "studies", "has_card"),
    [
        (SPINE_SITE, [], True),
        (LUMBAR_SITE, [], True),
        ([{"text": "T12 vertebra"}], [], True),
        (None, [study("mr")], True),
        (None, [study("cxr", modality="DX", description="XR chest 2 views")], False),
        (CHEST_SITE, [], False),
        ([{"coding": [{"system": SCT, "code": "29836001", "display": "Hip region structure"}]}], [], False),
        (None, [], False),
    ],
)
def test_osteoporotic_fracture_site_unspecified_needs_spine(
    call: Call, body_site: Any, studies: list[dict[str, Any]], has_card: bool
) -> None:
    extra = {"bodySite": body_site} if body_site else {}
    assert (len(cards(call([condition("fx", "443165006", SCT, **extra)], studies))) == 1) is has_card


def test_pathologic_neoplastic_vertebral_fracture(call: Call) -> None:
    assert finding(call([condition("fx", "M84.58XA")]))["fractures"][0]["etiology"] == "pathologic"


@pytest.mark.parametrize("code", ["M84.48XA", "M84.68XA"])
def test_pathologic_other_site_needs_spine_corroboration(call: Call, code: str) -> None:
    assert cards(call([condition("fx", code)])) == []
    with_site = condition("fx", code, bodySite=LUMBAR_SITE)
    assert finding(call([with_site]))["fractures"][0]["etiology"] == "pathologic"
    assert finding(call([condition("fx", code)], [study("mr")]))["fractures"][0]["etiology"] == "pathologic"


@pytest.mark.parametrize(
    ("code", "system"), [("C79.51", ICD), ("C90.00", ICD), ("C41.2", ICD), ("109989006", SCT)]
)
def test_collapsed_vertebra_with_bone_malignancy_is_pathologic(call: Call, code: str, system: str) -> None:
    answer = call([condition("fx", "M48.56XA"), condition("ca", code, system, onset="2025-01-01")])
    assert finding(answer)["fractures"][0]["etiology"] == "pathologic"


def test_collapsed_vertebra_with_malignancy_and_osteoporosis_is_osteoporotic(call: Call) -> None:
    answer = call([condition("fx", "M48.56XA"), condition("ca", "C79.51"), OSTEOPOROSIS])
    assert finding(answer)["fractures"][0]["etiology"] == "osteoporotic"


def test_osteoporosis_alone_never_triggers(call: Call) -> None:
    assert cards(call([OSTEOPOROSIS, condition("op2", "64859006", SCT, onset="2026-11-10")])) == []


REASON_STUDY = study(
    "mr-reason",
    started="2026-11-05",
    reasonCode=[{"coding": [{"system": ICD, "code": "M80.08XA"}]}],
    series=[
        {
            "uid": "1.2.3",
            "modality": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "MR"},
            "bodySite": {"system": SCT, "code": "66794005", "display": "L1 vertebra"},
        }
    ],
)


def test_imaging_reason_alone_is_suspected_fracture(call: Call) -> None:
    answer = call([], [REASON_STUDY])
    fx = finding(answer)["fractures"][0]
    assert (fx["basis"], fx.get("level"), fx["diagnosedOn"]) == ("imaging-reason", "L1", "2026-11-05")
    card = answer["cards"][0]
    assert "suspected from the imaging order" in card["detail"]
    resource = card["suggestions"][0]["actions"][0]["resource"]
    assert "reasonReference" not in resource
    assert resource["reasonCode"][0]["coding"][0]["code"] == "M80.08XA"
    assert {"reference": "ImagingStudy/mr-reason"} in resource["supportingInfo"]


def test_imaging_reason_merges_with_the_fracture_condition(call: Call) -> None:
    fx = condition("fx", "M80.08XA", onset="2026-11-04")
    found = finding(call([fx], [REASON_STUDY]))
    assert len(found["fractures"]) == 1
    merged = found["fractures"][0]
    assert merged["basis"] == "condition"
    assert merged["evidence"] == ["Condition/fx", "ImagingStudy/mr-reason"]
    assert merged["diagnosedOn"] == "2026-11-04"


def test_imaging_reason_conditional_code_still_needs_osteoporosis(call: Call) -> None:
    reason = study("s", reasonCode=[{"coding": [{"system": ICD, "code": "M48.56XA"}]}])
    assert cards(call([], [reason])) == []
    assert len(cards(call([OSTEOPOROSIS], [reason]))) == 1


def test_cancelled_imaging_reason_is_ignored(call: Call) -> None:
    cancelled = dict(REASON_STUDY, status="cancelled")
    assert cards(call([], [cancelled])) == []


# §4 Imaging --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("studies", "acuity", "listed"),
    [
        ([study("mr", modality="MR")], True, ["ImagingStudy/mr"]),
        ([study("nm", modality="NM", description="NM whole body bone scan")], True, ["ImagingStudy/nm"]),
        ([study("ct", modality="CT", description="CT lumbar spine")], False, ["ImagingStudy/ct"]),
        ([study("xr", modality="DX", description="XR L-spine 2 views")], False, ["ImagingStudy/xr"]),
        ([study("old", started="2026-09-30")], False, []),
        ([study("edge", started="2026-10-02")], True, ["ImagingStudy/edge"]),
        ([dict(study("cx"), status="cancelled")], False, []),
        ([dict(study("eie"), status="entered-in-error")], False, []),
        ([study("chest", modality="CT", description="CT chest")], False, []),
        ([study("thor", description="MR thoracic")], False, []),
        ([study("t", description="MRI T-spine")], True, ["ImagingStudy/t"]),
        ([study("v", description="Vertebral fracture assessment")], True, ["ImagingStudy/v"]),
        ([study("c", description="MRI cervical spine")], False, []),
    ],
)
def test_spine_imaging_relevance_and_acuity(
    call: Call, studies: list[dict[str, Any]], acuity: bool, listed: list[str]
) -> None:
    imaging = finding(call([condition("fx", "M80.08XA")], studies))["imaging"]
    assert imaging == {"acuityConfirmed": acuity, **({"studies": listed} if listed else {})}


def test_spine_by_series_body_site_and_modality_from_series(call: Call) -> None:
    s = study("s", description="Study")
    del s["modality"]
    s["series"] = [
        {
            "uid": "1",
            "modality": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "NM"},
            "bodySite": {"system": SCT, "code": "122495006"},
        }
    ]
    assert finding(call([condition("fx", "M80.08XA")], [s]))["imaging"]["acuityConfirmed"] is True


def test_spine_by_loinc_procedure_code_gives_modality(call: Call) -> None:
    s = study("s", description="Study")
    del s["modality"]
    s["procedureCode"] = [{"coding": [{"system": "http://loinc.org", "code": "24968-0"}]}]
    assert finding(call([condition("fx", "M80.08XA")], [s]))["imaging"] == {
        "acuityConfirmed": True,
        "studies": ["ImagingStudy/s"],
    }


def test_rib_series_is_not_spine(call: Call) -> None:
    s = study("s", description="Study")
    s["series"] = [
        {"uid": "1", "bodySite": {"system": SCT, "code": "51185008", "display": "Thoracic structure"}}
    ]
    assert finding(call([condition("fx", "M80.08XA")], [s]))["imaging"].get("studies", []) == []


def test_no_acuity_imaging_says_what_confirms_it(call: Call) -> None:
    detail = call([condition("fx", "M80.08XA")])["cards"][0]["detail"]
    assert "No MRI or bone scan since the fracture" in detail
    assert "STIR" in detail


# §5 Contraindications ----------------------------------------------------------------------------


def contraindications(answer: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["code"], c["kind"]) for c in finding(answer).get("contraindications", [])]


@pytest.mark.parametrize(
    ("code", "system", "expected"),
    [
        ("M46.25", ICD, ("infection", "absolute")),
        ("M46.46", ICD, ("infection", "absolute")),
        ("A41.9", ICD, ("infection", "absolute")),
        ("R65.21", ICD, ("infection", "absolute")),
        ("Z34.00", ICD, ("pregnancy", "absolute")),
        ("Z33.1", ICD, ("pregnancy", "absolute")),
        ("77386006", SCT, ("pregnancy", "absolute")),
        ("D68.9", ICD, ("coagulopathy", "relative")),
        ("D66", ICD, ("coagulopathy", "relative")),
        ("64779008", SCT, ("coagulopathy", "relative")),
        ("Z79.01", ICD, ("anticoagulation", "relative")),
        ("Z79.02", ICD, ("anticoagulation", "relative")),
        ("Z91.041", ICD, ("material-allergy", "relative")),
        ("G95.20", ICD, ("neurologic-compromise", "relative")),
        ("M47.16", ICD, ("neurologic-compromise", "relative")),
        ("G83.4", ICD, ("neurologic-compromise", "relative")),
        ("1734006", SCT, ("neurologic-compromise", "relative")),
        ("M51.16", ICD, ("disc-herniation", "not-advised")),
        ("M50.20", ICD, ("disc-herniation", "not-advised")),
        ("M47.816", ICD, ("spinal-arthritis", "not-advised")),
        ("M41.9", ICD, ("scoliosis", "not-advised")),
    ],
)
def test_each_contraindication_code(call: Call, code: str, system: str, expected: tuple[str, str]) -> None:
    answer = call([condition("fx", "M80.08XA"), condition("ci", code, system, onset="2026-10-01")])
    assert contraindications(answer) == [expected]
    assert finding(answer).get("contraindications", [])[0]["evidence"] == ["Condition/ci"]


def test_absolute_contraindication_is_a_warning_without_suggestion(call: Call) -> None:
    answer = call([condition("fx", "M80.08XA"), condition("ci", "M46.26", onset="2026-11-10")])
    card = answer["cards"][0]
    assert card["indicator"] == "warning"
    assert finding(answer)["recommendation"] == "contraindicated"
    assert "suggestions" not in card
    assert "selectionBehavior" not in card
    assert "contraindicated" in card["detail"]


def test_absolute_overrides_relative(call: Call) -> None:
    answer = call([condition("fx", "M80.08XA"), condition("a", "A41.9"), condition("r", "D68.9")])
    assert finding(answer)["recommendation"] == "contraindicated"
    assert contraindications(answer) == [("infection", "absolute"), ("coagulopathy", "relative")]


def test_relative_contraindication_keeps_info_card_with_suggestion(call: Call) -> None:
    card = call([condition("fx", "M80.08XA"), condition("r", "Z79.01")])["cards"][0]
    assert card["indicator"] == "info"
    assert len(card["suggestions"]) == 1
    assert "Hold or bridge" in card["detail"]


def test_neurologic_compromise_is_warning_with_suggestion(call: Call) -> None:
    answer = call([condition("fx", "M80.08XA"), condition("n", "G95.20")])
    card = answer["cards"][0]
    assert card["indicator"] == "warning"
    assert finding(answer)["recommendation"] == "refer"
    assert len(card["suggestions"]) == 1
    assert "spine surgery" in card["summary"]


@pytest.mark.parametrize(
    ("code", "onset", "counts"),
    [
        ("A41.9", "2026-08-25", True),  # 90 days
        ("A41.9", "2026-08-24", False),  # 91 days: stale
        ("A41.9", None, True),  # undated
        ("Z34.00", "2026-01-27", True),  # 300 days
        ("Z34.00", "2026-01-26", False),
        ("Z34.00", None, True),
        ("D68.9", "2001-01-01", True),  # chronic: no age limit
        ("M41.9", "1990-01-01", True),
    ],
)
def test_acute_contraindications_go_stale(call: Call, code: str, onset: str | None, counts: bool) -> None:
    answer = call([condition("fx", "M80.08XA"), condition("ci", code, onset=onset)])
    assert bool(contraindications(answer)) is counts


def test_undated_contraindication_is_said_undated(call: Call) -> None:
    detail = call([condition("fx", "M80.08XA"), condition("ci", "A41.9", onset=None)])["cards"][0]["detail"]
    assert "undated" in detail


def test_contraindication_that_does_not_count_is_ignored(call: Call) -> None:
    resolved = condition("ci", "A41.9", clinicalStatus=status("resolved"))
    assert contraindications(call([condition("fx", "M80.08XA"), resolved])) == []


def test_contraindications_alone_give_no_card(call: Call) -> None:
    assert cards(call([condition("ci", "A41.9"), condition("r", "D68.9")])) == []


def test_more_than_three_levels_is_relative_note(call: Call) -> None:
    levels = {"T11": "12989004", "T12": "23215003", "L1": "66794005", "L2": "14293000"}
    fractures = [
        condition(f"fx-{lvl}", "M80.08XA", bodySite=[{"coding": [{"system": SCT, "code": code}]}])
        for lvl, code in levels.items()
    ]
    answer = call(fractures)
    found = finding(answer)
    assert [f.get("level") for f in found["fractures"]] == list(levels)
    assert found["contraindications"] == [
        {
            "code": "multiple-levels",
            "kind": "relative",
            "evidence": sorted(f"Condition/fx-{lvl}" for lvl in levels),
        }
    ]
    assert contraindications(call(fractures[:3])) == []


# §6 Output ---------------------------------------------------------------------------------------


def test_duplicates_across_encounters_collapse_per_level(call: Call) -> None:
    site = [{"text": "L1"}]
    found = finding(
        call(
            [
                condition("enc1", "M80.08XA", onset="2026-11-01", bodySite=site),
                condition("enc2", "M80.08XA", onset="2026-11-08", bodySite=site),
                condition("problem", "203450003", SCT, onset="2026-11-03", bodySite=site),
            ]
        )
    )
    assert len(found["fractures"]) == 1
    fx = found["fractures"][0]
    assert fx["diagnosedOn"] == "2026-11-01"
    assert fx["evidence"] == ["Condition/enc1", "Condition/enc2", "Condition/problem"]


def test_levelless_fracture_merges_into_the_single_known_level(call: Call) -> None:
    found = finding(
        call([condition("l1", "M80.08XA", bodySite=[{"text": "L1"}]), condition("nolevel", "M80.88XA")])
    )
    assert [(f.get("level"), f["evidence"]) for f in found["fractures"]] == [
        ("L1", ["Condition/l1", "Condition/nolevel"])
    ]


def test_levelless_fractures_become_one_beside_two_known_levels(call: Call) -> None:
    found = finding(
        call(
            [
                condition("l1", "M80.08XA", bodySite=[{"text": "L1"}]),
                condition("t12", "M80.08XA", bodySite=[{"text": "T12"}]),
                condition("a", "M80.88XA", onset="2026-11-02"),
                condition("b", "240198002", SCT, onset="2026-11-03"),
            ]
        )
    )
    assert sorted((f.get("level") or "-", tuple(f["evidence"])) for f in found["fractures"]) == [
        ("-", ("Condition/a", "Condition/b")),
        ("L1", ("Condition/l1",)),
        ("T12", ("Condition/t12",)),
    ]


def test_old_fracture_does_not_count_but_new_one_does(call: Call) -> None:
    found = finding(call([condition("old", "M80.08XA", onset="2025-01-01"), condition("new", "M80.08XA")]))
    assert found["fractures"][0]["evidence"] == ["Condition/new"]


def test_one_card_however_many_fractures(call: Call) -> None:
    answer = call([condition(f"fx{i}", "M80.08XA", onset=f"2026-11-{i + 10:02d}") for i in range(8)])
    assert len(answer["cards"]) == 1


def test_study_with_thousands_of_instances_is_read_without_them(call: Call) -> None:
    s = study("big")
    s["series"] = [
        {
            "uid": "1.2",
            "modality": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "MR"},
            "instance": [{"uid": f"1.2.{n}", "sopClass": {"code": "x"}} for n in range(5000)],
        }
    ]
    assert finding(call([condition("fx", "M80.08XA")], [s]))["imaging"].get("studies", []) == [
        "ImagingStudy/big"
    ]
