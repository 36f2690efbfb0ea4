"""The local FHIR test server is usable by browser clients such as the CDS Hooks Sandbox: CORS with
preflight, an R4 CapabilityStatement at /metadata, and search by POST (form-encoded)."""

from __future__ import annotations

import requests

from support.fhir_server import FhirTestServer

SANDBOX_ORIGIN = "https://sandbox.cds-hooks.org"


def test_metadata_is_an_r4_capability_statement(fhir_server: FhirTestServer) -> None:
    reply = requests.get(f"{fhir_server.base_url}/metadata", timeout=10)
    assert reply.status_code == 200
    assert reply.headers["Content-Type"].startswith("application/fhir+json")
    statement = reply.json()
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.0.1"
    assert statement["kind"] == "instance"
    types = {r["type"] for r in statement["rest"][0]["resource"]}
    assert {"Patient", "Condition", "ImagingStudy"} <= types
    condition = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Condition")
    assert {"read", "search-type"} <= {i["code"] for i in condition["interaction"]}


def test_cors_preflight_allows_the_sandbox(fhir_server: FhirTestServer) -> None:
    reply = requests.options(
        f"{fhir_server.base_url}/Condition/_search",
        headers={
            "Origin": SANDBOX_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
        timeout=10,
    )
    assert reply.status_code == 204
    assert reply.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in reply.headers["Access-Control-Allow-Methods"]
    allowed = reply.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed
    assert "content-type" in allowed
    assert fhir_server.requests() == []  # a preflight is not a FHIR request


def test_every_answer_allows_any_origin(fhir_server: FhirTestServer) -> None:
    for path in ("/Patient/s01-patient", "/Condition?patient=s01-patient", "/Patient/nobody"):
        reply = requests.get(fhir_server.base_url + path, headers={"Origin": SANDBOX_ORIGIN}, timeout=10)
        assert reply.headers["Access-Control-Allow-Origin"] == "*", path


def test_search_by_post_matches_search_by_get(fhir_server: FhirTestServer) -> None:
    by_get = requests.get(f"{fhir_server.base_url}/Condition", params={"patient": "s01-patient"}, timeout=10)
    by_post = requests.post(
        f"{fhir_server.base_url}/Condition/_search", data={"patient": "s01-patient"}, timeout=10
    )
    assert by_post.status_code == 200, by_post.text
    ids = {e["resource"]["id"] for e in by_post.json()["entry"]}
    assert ids == {e["resource"]["id"] for e in by_get.json()["entry"]}
    assert "s01-fx" in ids
    assert all(
        e["resource"]["subject"]["reference"] == "Patient/s01-patient" for e in by_post.json()["entry"]
    )


def test_search_by_post_joins_url_and_form_parameters(fhir_server: FhirTestServer) -> None:
    reply = requests.post(
        f"{fhir_server.base_url}/Condition/_search?_count=1", data={"patient": "s01-patient"}, timeout=10
    )
    bundle = reply.json()
    assert len(bundle["entry"]) == 1
    assert any(link["relation"] == "next" for link in bundle["link"]) == (bundle["total"] > 1)


def test_search_by_post_refuses_unknown_parameters(fhir_server: FhirTestServer) -> None:
    reply = requests.post(f"{fhir_server.base_url}/Condition/_search", data={"colour": "blue"}, timeout=10)
    assert reply.status_code == 400
