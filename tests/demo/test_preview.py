"""The preview page's server side in-process: demo only, patient list, rebased requests, Markdown."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import orjson
import pytest
from flask.testing import FlaskClient
from support.builders import AS_OF, FIXTURES, REFERRAL_URL

from cds_service.app import create_app
from cds_service.demo.patients import packaged_fixtures

POSITIVE = "01-osteoporotic-l1-mri"
ORDER_SIGN = "vertebral-augmentation-order-sign"


@pytest.fixture
def demo() -> FlaskClient:
    return create_app(clock=lambda: AS_OF, auth="off", demo=True).test_client()


def test_no_preview_page_unless_demo(client: FlaskClient) -> None:
    for path in ("/", f"/preview/requests/{POSITIVE}", "/preview/static/preview.js"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.get_json()["resourceType"] == "OperationOutcome"


def test_page_lists_every_scenario_with_its_description(demo: FlaskClient) -> None:
    html = demo.get("/").get_data(as_text=True)
    scenarios = sorted(p for p in FIXTURES.iterdir() if (p / "scenario.json").is_file())
    assert len(scenarios) > 50
    for folder in scenarios:
        assert f'data-scenario="{folder.name}"' in html
    description = orjson.loads((FIXTURES / POSITIVE / "scenario.json").read_bytes())["description"]
    assert description in html
    assert AS_OF.isoformat() in html


def test_packaged_fixtures_are_the_checkout_folder_in_a_dev_install() -> None:
    assert (packaged_fixtures() / POSITIVE / "bundle.json").is_file()


def test_request_is_rebased_to_today_and_answers_like_the_fixture(demo: FlaskClient) -> None:
    body = demo.get(f"/preview/requests/{POSITIVE}").get_json()
    assert body["hook"] == "patient-view"
    assert body["context"]["patientId"] == "s01-patient"
    fracture = next(
        e["resource"] for e in body["prefetch"]["conditions"]["entry"] if e["resource"]["id"] == "s01-fx"
    )
    as_of = date.fromisoformat(orjson.loads((FIXTURES / POSITIVE / "scenario.json").read_bytes())["asOf"])
    original = orjson.loads((FIXTURES / POSITIVE / "bundle.json").read_bytes())
    onset = next(e["resource"] for e in original["entry"] if e["resource"]["id"] == "s01-fx")["onsetDateTime"]
    expected = date.fromisoformat(onset[:10]) + timedelta(days=(AS_OF - as_of).days)
    assert fracture["onsetDateTime"][:10] == expected.isoformat()

    cards = demo.post(REFERRAL_URL, json=body).get_json()["cards"]
    assert len(cards) == 1
    assert cards[0]["extension"]["vertebral-augmentation-cds/finding"]["fractures"][0]["ageDays"] == 14


def test_order_sign_request_carries_the_sample_kyphoplasty_order(demo: FlaskClient) -> None:
    body = demo.get(f"/preview/requests/76-noise-only?service={ORDER_SIGN}").get_json()
    assert body["hook"] == "order-sign"
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    assert order["resourceType"] == "ServiceRequest"
    assert order["status"] == "draft"
    assert order["code"]["coding"][0] == {**order["code"]["coding"][0], "code": "22514"}
    assert order["subject"] == {"reference": "Patient/s76-patient"}
    assert order["authoredOn"] == AS_OF.isoformat()
    cards = demo.post(f"/cds-services/{ORDER_SIGN}", json=body).get_json()["cards"]
    assert [c["extension"]["vertebral-augmentation-cds/finding"]["recommendation"] for c in cards] == [
        "order-not-supported"
    ]


@pytest.mark.parametrize(
    ("path", "needle"),
    [
        ("/preview/requests/%2E%2E", "unknown demo patient"),
        ("/preview/requests/no-such-patient", "unknown demo patient"),
        (f"/preview/requests/{POSITIVE}?service=nope", "unknown CDS service"),
    ],
)
def test_unknown_patient_or_service_is_404(demo: FlaskClient, path: str, needle: str) -> None:
    response = demo.get(path)
    assert response.status_code == 404
    assert response.get_json()["issue"][0]["diagnostics"] == needle


def test_markdown_is_rendered_without_raw_html_or_script_links(demo: FlaskClient) -> None:
    texts = [
        "**Order:** x",
        "<script>alert(1)</script>",
        "[click](javascript:alert(1))",
        "| a |\n|---|\n| b |",
    ]
    html = demo.post("/preview/markdown", json={"markdown": texts}).get_json()["html"]
    assert html[0] == "<p><strong>Order:</strong> x</p>\n"
    assert "<script>" not in html[1]
    assert "&lt;script&gt;" in html[1]
    assert "href" not in html[2]
    assert "<table>" in html[3]


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        b'{"markdown": "text"}',
        b'{"markdown": [1]}',
        b"[]",
        b"not json",
        orjson.dumps({"markdown": ["x"] * 21}),
    ],
)
def test_markdown_endpoint_refuses_bad_bodies(demo: FlaskClient, body: bytes) -> None:
    response = demo.post("/preview/markdown", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["resourceType"] == "OperationOutcome"


def test_fixtures_dir_setting_lists_another_folder(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / POSITIVE, tmp_path / "my-patient")
    client = create_app(clock=lambda: AS_OF, auth="off", demo=True, fixtures_dir=tmp_path).test_client()
    html = client.get("/").get_data(as_text=True)
    assert 'data-scenario="my-patient"' in html
    assert POSITIVE not in html
    assert client.get("/preview/requests/my-patient").status_code == 200


def test_a_broken_scenario_in_fixtures_dir_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "no-patient").mkdir()
    (tmp_path / "no-patient" / "scenario.json").write_text('{"description": "x", "asOf": "2026-01-01"}')
    (tmp_path / "no-patient" / "bundle.json").write_text('{"resourceType": "Bundle", "entry": []}')
    (tmp_path / "no-bundle").mkdir()
    (tmp_path / "no-bundle" / "scenario.json").write_text('{"description": "y"}')
    client = create_app(clock=lambda: AS_OF, auth="off", demo=True, fixtures_dir=tmp_path).test_client()
    for name, needle in (("no-patient", "has no Patient"), ("no-bundle", "could not be read")):
        response = client.get(f"/preview/requests/{name}")
        assert response.status_code == 422
        assert needle in response.get_json()["issue"][0]["diagnostics"]


def test_page_shows_each_patient_banner_and_hook(demo: FlaskClient) -> None:
    html = demo.get("/").get_data(as_text=True)
    # Fixture 01's Patient: Dorothy Ellison, female, born 1948-04-12 (78 at the as-of date, and today too).
    assert 'data-scenario="01-osteoporotic-l1-mri" data-hook="patient-view"' in html
    assert 'data-patient-name="Dorothy Ellison" data-age="78 y" data-sex="female"' in html
    assert 'data-scenario="92-order-select-old-l1-vertebroplasty" data-hook="order-select"' in html
    assert 'data-scenario="93-order-sign-sepsis" data-hook="order-sign"' in html
    for hook in ("patient-view", "order-select", "order-sign"):
        assert f'class="hook" data-hook="{hook}"' in html


def test_patient_banner_reads_name_age_and_sex() -> None:
    from cds_service.demo.patients import patient_banner

    today = date(2026, 12, 1)
    banner = patient_banner(
        {"name": [{"text": " Ann Lee "}], "gender": "female", "birthDate": "1950-12-02"}, today
    )
    assert (banner.name, banner.age, banner.sex) == ("Ann Lee", "75 y", "female")
    nameless = patient_banner({"id": "p1", "birthDate": "not a date"}, today)
    assert (nameless.name, nameless.age, nameless.sex) == ("p1", "age unknown", "sex unknown")
    usual = patient_banner(
        {
            "name": [
                {"use": "usual", "given": ["Bo"]},
                {"use": "official", "given": ["Robert", "J"], "family": "Kay"},
            ]
        },
        today,
    )
    assert usual.name == "Robert J Kay"


def test_descriptions_quote_the_rebased_dates(demo: FlaskClient) -> None:
    folder = "07-snomed-thoracic-collapse-onset-age"
    meta = orjson.loads((FIXTURES / folder / "scenario.json").read_bytes())
    assert "1948-03-02" in meta["description"]
    shift = AS_OF - date.fromisoformat(meta["asOf"])
    html = demo.get("/").get_data(as_text=True)
    shown = (date(1948, 3, 2) + shift).isoformat()
    assert f"born {shown}, so {(date(2026, 3, 2) + shift).isoformat()}" in html
    assert "1948-03-02" not in html or shift.days == 0


def test_rebase_text_moves_full_iso_dates_only() -> None:
    from cds_service.demo.scenario import rebase_text

    assert rebase_text("onset 2026-04-21T21:40-04:00, born 1948-03-02", 10) == (
        "onset 2026-05-01T21:40-04:00, born 1948-03-12"
    )
    assert rebase_text("partial '2026-05', not a day 2026-02-30, code M80.08XA", 10) == (
        "partial '2026-05', not a day 2026-02-30, code M80.08XA"
    )


def test_order_fixtures_request_their_own_hook_with_their_draft_orders(demo: FlaskClient) -> None:
    for folder, service in (
        ("92-order-select-old-l1-vertebroplasty", "vertebral-augmentation-order-select"),
        ("93-order-sign-sepsis", ORDER_SIGN),
    ):
        meta = orjson.loads((FIXTURES / folder / "scenario.json").read_bytes())
        body = demo.get(f"/preview/requests/{folder}?service={service}").get_json()
        assert body["hook"] == meta["hook"]
        ids = [e["resource"]["id"] for e in body["context"]["draftOrders"]["entry"]]
        assert ids == [e["resource"]["id"] for e in meta["context"]["draftOrders"]["entry"]]
        if "selections" in meta["context"]:
            assert body["context"]["selections"] == meta["context"]["selections"]
        cards = demo.post(f"/cds-services/{service}", json=body).get_json()["cards"]
        assert [c["extension"]["vertebral-augmentation-cds/finding"]["recommendation"] for c in cards] == [
            meta["expected"]["recommendation"]
        ]


def test_sandbox_box_names_the_discovery_url(demo: FlaskClient) -> None:
    html = demo.get("/").get_data(as_text=True)
    assert "How to point the CDS Hooks Sandbox at this service" in html
    assert '<code id="discovery-url">http://localhost/cds-services</code>' in html
    proxied = create_app(
        clock=lambda: AS_OF, auth="off", demo=True, public_base_url="https://cds.example.org/va"
    ).test_client()
    assert '<code id="discovery-url">https://cds.example.org/va/cds-services</code>' in proxied.get(
        "/"
    ).get_data(as_text=True)
