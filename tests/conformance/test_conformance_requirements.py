"""CDS Hooks 2.0 and hook-library requirements that no other module proves directly (each named in
docs/conformance.md): JSON on every endpoint, the prefetch templates' tokens and query subset."""

from __future__ import annotations

import re
from typing import Any

import pytest
from flask.testing import FlaskClient
from support.builders import REFERRAL_URL, condition, hook_body, order_sign_body

from cds_service.hooks.catalogue import SERVICES

_TOKEN = re.compile(r"\{\{(.*?)\}\}")
# Root-level primitive context fields of the hooks we offer (hook library 1.0.1); draftOrders and
# selections are objects / arrays and SHALL NOT be prefetch tokens.
_PRIMITIVE_CONTEXT = {
    "patient-view": {"userId", "patientId", "encounterId"},
    "order-select": {"userId", "patientId", "encounterId"},
    "order-sign": {"userId", "patientId", "encounterId"},
}
_USER_TOKENS = {"userPractitionerId", "userPractitionerRoleId", "userPatientId", "userRelatedPersonId"}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/cds-services", None),
        ("post", REFERRAL_URL, "card"),
        ("post", "/cds-services/vertebral-augmentation-order-sign", "order"),
        ("post", REFERRAL_URL, {"hook": "patient-view"}),  # 400
        ("post", REFERRAL_URL, "no-prefetch"),  # 412
        ("post", "/cds-services/nope", {}),  # 404
        ("post", REFERRAL_URL + "/feedback", {"feedback": []}),  # 400
    ],
    ids=["discovery", "hook", "order-hook", "400", "412", "404", "feedback-400"],
)
def test_every_endpoint_answers_json(client: FlaskClient, method: str, path: str, body: Any) -> None:
    """cds-hooks_2.0@1: data exchanged as JSON, errors included (FHIR OperationOutcome JSON)."""
    if body == "card":
        body = hook_body([condition("fx", "M80.08XA")])
    elif body == "order":
        body = order_sign_body()
    elif body == "no-prefetch":
        body = {**hook_body([]), "prefetch": {}}
    response = client.get(path) if method == "get" else client.post(path, json=body)
    assert response.mimetype == "application/json", (response.status_code, response.mimetype)
    assert isinstance(response.get_json(), dict)


@pytest.mark.parametrize("service", SERVICES.values(), ids=lambda s: s.id)
def test_prefetch_templates_use_only_allowed_tokens_and_queries(service: Any) -> None:
    """cds-hooks_2.0@55-59 and hook library: tokens are `{{...}}`, name a root-level primitive context
    field as `context.<field>` (or a user identifier); never draftOrders or selections; queries are
    an instance read or a type search with one parameter (the RECOMMENDED subset)."""
    templates = service.discovery()["prefetch"]
    assert templates
    for key, template in templates.items():
        outside = _TOKEN.sub("", template)
        assert "{" not in outside, key
        assert "}" not in outside, key
        for token in _TOKEN.findall(template):
            if token in _USER_TOKENS:
                continue
            assert token.startswith("context."), token
            assert token.removeprefix("context.") in _PRIMITIVE_CONTEXT[service.hook], token
            assert token not in ("context.draftOrders", "context.selections")
        resource_type, _, query = template.partition("?")
        if query:
            assert re.fullmatch(r"[A-Z][A-Za-z]+", resource_type), template
            assert re.fullmatch(r"patient=\{\{context\.patientId\}\}", query), template
        else:
            assert re.fullmatch(r"[A-Z][A-Za-z]+/\{\{context\.patientId\}\}", template), template
