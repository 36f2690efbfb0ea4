"""/rationale is docs/clinical-rules.md rendered with the running configuration: the page and the
documentation cannot drift, and every number it states is the one the service uses."""

from __future__ import annotations

import re

from support.builders import AS_OF, ROOT

from cds_service.app import create_app
from cds_service.config.settings import Settings
from cds_service.core.terminology import load_terminology
from cds_service.web.rationale import MARKER, configured_numbers

DOC = (ROOT / "docs" / "clinical-rules.md").read_text()


def _page(**overrides: object) -> str:
    app = create_app(clock=lambda: AS_OF, auth="off", database_url="sqlite://", **overrides)
    response = app.test_client().get("/rationale")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_the_documented_numbers_are_the_shipped_defaults() -> None:
    """Read on GitHub, the document shows its defaults: each marked number is the running default."""
    defaults = configured_numbers(Settings(_env_file=None), load_terminology())  # type: ignore[call-arg]
    marked = MARKER.findall(DOC)
    assert {name for _, name in marked} >= {"recent_days", "stale:infection", "stale:pregnancy"}
    for written, name in marked:
        assert int(written) == defaults[name], name


def test_the_page_states_the_configured_window() -> None:
    page = _page(recent_days=10)
    assert "last 10 days" in page
    assert "60 days" not in page
    assert "<!--" not in page
    assert "cfg:" not in page


def test_the_page_renders_the_whole_document() -> None:
    page = _page()
    for heading in re.findall(r"^## (.+)$", DOC, flags=re.MULTILINE):
        assert heading.replace("&", "&amp;") in page, heading


def test_the_page_cites_the_evidence_behind_the_defaults() -> None:
    page = _page()
    assert "two months" in page
    for lcd in ("38201", "34228"):
        assert f'href="https://www.cms.gov/medicare-coverage-database/view/lcd.aspx?lcdid={lcd}"' in page


def test_the_page_no_longer_claims_to_read_three_resource_types() -> None:
    page = _page()
    assert "Conditions, ImagingStudies and the Patient" not in page
    for resource in (
        "DiagnosticReport",
        "MedicationRequest",
        "AllergyIntolerance",
        "Procedure",
        "ServiceRequest",
    ):
        assert resource in page
