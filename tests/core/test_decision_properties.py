"""Property-based tests (hypothesis): any request body gets an answer that is not a 500, and any
FHIR-ish resources fed to the functional core are read, decided and carded without an exception."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.builders import AS_OF, ICD, REFERRAL_URL, SCT, hook_body

from cds_service.core.card_builder import load_card_content, order_card, referral_card
from cds_service.core.decision import decide_order, decide_referral
from cds_service.core.orders import augmentation_orders
from cds_service.core.record import read_record
from cds_service.core.terminology import Terminology, load_terminology

TERMINOLOGY = load_terminology()
CONTENT = load_card_content()
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
codes = st.sampled_from(
    [
        "M80.08XA",
        "M80.88XA",
        "M48.56XA",
        "M84.58XA",
        "S32.010A",
        "22513",
        "22510",
        "M46.26",
        "11289",
        "O09.90",
        "M41.9",
        "D68.9",
        "425613008",
        "122496007",
        "77477000",
        "I10",
    ]
)
systems = st.sampled_from(
    [ICD, SCT, "http://www.ama-assn.org/go/cpt", "http://www.nlm.nih.gov/research/umls/rxnorm"]
)
coding = st.fixed_dictionaries(
    {},
    optional={
        "system": systems | json_values,
        "code": codes | json_values,
        "display": st.text(max_size=30) | json_values,
    },
)
texts = st.sampled_from(
    [
        "vertebroplasty",
        "kyphoplasty",
        "osteoporotic fracture of L1",
        "MRI lumbar spine",
        "PMMA",
        "warfarin",
        "T12 compression fracture",
        "spinal infection",
        "",
    ]
)
concept = st.fixed_dictionaries(
    {}, optional={"coding": st.lists(coding, max_size=3) | json_values, "text": texts | json_values}
)
dates = (
    st.dates().map(str)
    | st.sampled_from(
        [
            "2026-11",
            "2026",
            "2026-11-01T10:00:00+05:00",
            "2026-10-30T23:59:59Z",
            "9999-12-31",
            "0001-01-01",
            "2026-02-30",
            "2026-11-22",
        ]
    )
    | json_values
)
statuses = (
    st.sampled_from(["active", "completed", "draft", "entered-in-error", "cancelled", "on-hold"])
    | json_values
)
subject = st.just({"reference": "Patient/p1"}) | st.just({"reference": "Patient/other"}) | json_values
resource = st.fixed_dictionaries(
    {
        "resourceType": st.sampled_from(
            [
                "Condition",
                "ImagingStudy",
                "Procedure",
                "ServiceRequest",
                "MedicationRequest",
                "MedicationStatement",
                "AllergyIntolerance",
                "Patient",
            ]
        ),
        "id": st.text(min_size=1, max_size=8) | json_values,
    },
    optional={
        "subject": subject,
        "patient": subject,
        "code": concept | json_values,
        "status": statuses,
        "clinicalStatus": concept,
        "verificationStatus": concept,
        "onsetDateTime": dates,
        "recordedDate": dates,
        "onsetPeriod": st.fixed_dictionaries({}, optional={"start": dates}) | json_values,
        "onsetAge": st.fixed_dictionaries(
            {}, optional={"value": json_values | st.integers(0, 120), "code": st.just("a")}
        ),
        "abatementDateTime": dates,
        "bodySite": st.lists(concept, max_size=2) | json_values,
        "started": dates,
        "modality": st.lists(coding, max_size=2) | json_values,
        "series": st.lists(
            st.fixed_dictionaries({}, optional={"modality": coding, "bodySite": coding}), max_size=2
        )
        | json_values,
        "reasonCode": st.lists(concept, max_size=2) | json_values,
        "procedureCode": st.lists(concept, max_size=2) | json_values,
        "performedDateTime": dates,
        "authoredOn": dates,
        "effectiveDateTime": dates,
        "medicationCodeableConcept": concept | json_values,
        "reaction": st.lists(st.fixed_dictionaries({}, optional={"substance": concept}), max_size=2)
        | json_values,
        "birthDate": dates,
        "intent": st.sampled_from(["order", "proposal"]) | json_values,
    },
)


def _grouped(resources: list[dict[str, Any]]) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = defaultdict(list)
    for item in resources:
        grouped[item["resourceType"]].append(item)
    return grouped


@SETTINGS
@given(resources=st.lists(resource, max_size=12), recent_days=st.integers(1, 3650))
def test_core_reads_decides_and_cards_any_resources(
    resources: list[dict[str, Any]], recent_days: int
) -> None:
    terminology: Terminology = TERMINOLOGY
    record = read_record(
        _grouped(resources), terminology, AS_OF, unavailable={"ImagingStudy"} if recent_days % 2 else set()
    )
    decision = decide_referral(record, terminology, AS_OF, recent_days)
    card = referral_card(
        decision,
        CONTENT,
        patient_id="p1",
        user_id="Practitioner/1",
        rationale_url="https://x/r",
        new_uuid=lambda: "u",
    )
    if card is not None:
        assert len(card["summary"]) < 140
        assert card["indicator"] in ("info", "warning", "critical")
    orders = augmentation_orders(resources, terminology)
    order_decision = decide_order(record, orders, terminology, AS_OF, recent_days)
    order_card(order_decision, CONTENT, rationale_url="https://x/r", new_uuid=lambda: "u")


@SETTINGS
@given(resources=st.lists(resource, max_size=10))
def test_any_resources_in_a_valid_call_are_answered_200(
    client: FlaskClient, resources: list[dict[str, Any]]
) -> None:
    body = hook_body()
    for key, query_type in (
        ("conditions", "Condition"),
        ("imaging", "ImagingStudy"),
        ("procedures", "Procedure"),
    ):
        body["prefetch"][key]["entry"] = [
            {"resource": r} for r in resources if r["resourceType"] == query_type
        ]
    body["prefetch"]["medicationrequests"]["entry"] = [{"resource": r} for r in resources]
    response = client.post(REFERRAL_URL, data=json.dumps(body), content_type="application/json")
    assert response.status_code == 200, response.get_data(as_text=True)


@SETTINGS
@given(
    body=json_values
    | st.dictionaries(
        st.sampled_from(["hook", "hookInstance", "context", "prefetch", "fhirServer", "fhirAuthorization"]),
        json_values,
    )
)
def test_any_json_body_to_a_hook_is_never_a_server_error(client: FlaskClient, body: Any) -> None:
    for url in (REFERRAL_URL, "/cds-services/vertebral-augmentation-order-select"):
        response = client.post(url, data=json.dumps(body), content_type="application/json")
        assert response.status_code in (200, 400, 412)


@SETTINGS
@given(
    entries=st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "card": st.text(max_size=70) | json_values,
                "outcome": st.sampled_from(["accepted", "overridden"]) | json_values,
                "outcomeTimestamp": dates,
                "acceptedSuggestions": st.lists(
                    st.fixed_dictionaries({"id": st.text(max_size=5) | json_values}), max_size=2
                )
                | json_values,
                "overrideReason": st.fixed_dictionaries(
                    {},
                    optional={
                        "reason": coding | json_values,
                        "userComment": st.text(max_size=20) | json_values,
                    },
                )
                | json_values,
            },
        ),
        max_size=5,
    )
    | json_values
)
def test_any_feedback_body_is_200_or_400(client: FlaskClient, entries: Any) -> None:
    response = client.post(
        REFERRAL_URL + "/feedback", data=json.dumps({"feedback": entries}), content_type="application/json"
    )
    assert response.status_code in (200, 400), response.get_data(as_text=True)
