"""The preview page in a real headless Chromium against a real `spine-cds serve --demo`.

Chromium is Debian's package (installed by the test setup when missing and we are root); the test
skips only where it cannot be installed. Screenshots go to tests/artifacts/ (gitignored).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from support.live import ARTIFACTS, ROOT, LiveServer, ensure_chromium, launch_chromium, open_patient, serve
from support.live import screenshot_chart as save_chart

from cds_service.core.card_builder import load_card_content

POSITIVE = "01-osteoporotic-l1-mri"
NEGATIVE = "76-noise-only"
FIXTURES = ROOT / "fhir_fixtures"


@pytest.fixture(scope="module")
def live() -> Iterator[LiveServer]:
    with serve(demo=True) as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable, why_not = ensure_chromium()
    if executable is None:
        pytest.skip(f"browser tests skipped: {why_not}")
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright, executable)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser, live: LiveServer) -> Iterator[Page]:
    """A fresh page that records script errors and every URL it asks for."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    requested: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("request", lambda request: requested.append(request.url))
    yield page
    context.close()
    assert errors == [], f"script errors on the page: {errors}"
    foreign = [url for url in requested if not url.startswith(live.base_url)]
    assert foreign == [], f"the page loaded something from elsewhere: {foreign}"


def test_page_lists_every_fixture_patient_with_its_description(page: Page, live: LiveServer) -> None:
    page.goto(live.base_url + "/")
    folders = sorted(p.name for p in FIXTURES.iterdir() if (p / "scenario.json").is_file())
    buttons = page.locator("button.patient")
    assert buttons.count() == len(folders)
    first = json.loads((FIXTURES / POSITIVE / "scenario.json").read_text())["description"]
    assert (
        page.locator(f'button.patient[data-scenario="{POSITIVE}"] .patient-description').inner_text() == first
    )
    assert page.locator("#empty-state").is_visible()


def test_positive_patient_shows_one_card_with_its_suggestion(page: Page, live: LiveServer) -> None:
    open_patient(page, live.base_url, POSITIVE)
    cards = page.locator(".cds-card")
    assert cards.count() == 1
    card = cards.first
    assert card.get_attribute("data-indicator") == "info"
    assert "L1" in card.locator(".card-summary").inner_text()
    # Dates are rebased to today: the fracture was 14 days old at the scenario's as-of date.
    diagnosed = (datetime.now(UTC).date() - timedelta(days=14)).isoformat()
    detail = card.locator(".card-detail")
    assert diagnosed in detail.inner_text()
    assert "14 days ago" in detail.inner_text()
    assert detail.locator("strong").count() > 0, "Markdown should be rendered, not shown raw"
    assert "**" not in detail.inner_text()
    texts = load_card_content().texts
    suggestion = card.locator("button.cds-suggestion")
    assert suggestion.count() == 1
    assert suggestion.inner_text() == texts["suggestion"]["label"]
    assert card.locator(".card-source a").get_attribute("href") == live.base_url + "/rationale"
    reasons = [r["display"] for r in texts["override_reasons"]["referral"]]
    options = card.locator("select.override-reason option").all_inner_texts()
    assert options[1:] == reasons
    save_chart(page, ARTIFACTS / "preview-card.png")

    suggestion.click()
    outcome = card.locator(".suggestion-outcome")
    assert outcome.is_visible()
    created = json.loads(outcome.locator("pre").inner_text())
    assert created["resourceType"] == "ServiceRequest"
    assert created["intent"] == "proposal"
    assert suggestion.is_disabled()

    card.locator("select.override-reason").select_option(index=1)
    card.locator("button.dismiss").click()
    assert reasons[0] in card.locator(".dismiss-note").inner_text()


def test_negative_patient_shows_no_cards(page: Page, live: LiveServer) -> None:
    open_patient(page, live.base_url, NEGATIVE)
    assert page.locator("#no-cards").is_visible()
    assert "No cards" in page.locator("#no-cards").inner_text()
    assert page.locator(".cds-card").count() == 0


def test_raw_json_toggle_shows_the_real_request_and_response(page: Page, live: LiveServer) -> None:
    open_patient(page, live.base_url, POSITIVE)
    raw = page.locator("#raw")
    assert raw.is_hidden()
    page.check("#raw-toggle")
    assert raw.is_visible()
    request = json.loads(page.locator("#raw-request").inner_text())
    response = json.loads(page.locator("#raw-response").inner_text())
    assert request["hook"] == "patient-view"
    assert request["context"]["patientId"] == "s01-patient"
    assert set(request["prefetch"]) >= {"patient", "conditions", "imaging"}
    assert len(response["cards"]) == 1
    assert response["cards"][0]["summary"] == page.locator(".card-summary").inner_text()
    assert "HTTP 200" in page.locator("#raw-status").inner_text()
    page.uncheck("#raw-toggle")
    assert raw.is_hidden()
    save_chart(page, ARTIFACTS / "preview-raw-toggle.png")


def test_order_sign_on_a_sample_kyphoplasty_order_shows_a_card(page: Page, live: LiveServer) -> None:
    open_patient(page, live.base_url, NEGATIVE)
    page.click("#order-sign")
    page.wait_for_selector('#cards[data-state="done"] .cds-card')
    card = page.locator(".cds-card")
    assert card.count() == 1
    assert card.first.get_attribute("data-indicator") == "warning"
    page.check("#raw-toggle")
    request = json.loads(page.locator("#raw-request").inner_text())
    assert request["hook"] == "order-sign"
    order = request["context"]["draftOrders"]["entry"][0]["resource"]
    assert order["code"]["coding"][0]["code"] == "22514"
    assert order["subject"]["reference"] == "Patient/s76-patient"
    response = json.loads(page.locator("#raw-response").inner_text())
    finding = response["cards"][0]["extension"]["vertebral-augmentation-cds/finding"]
    assert finding["recommendation"] == "order-not-supported"
    delete = response["cards"][0]["suggestions"][0]["actions"][0]
    assert delete == {**delete, "type": "delete", "resourceId": f"ServiceRequest/{order['id']}"}
    save_chart(page, ARTIFACTS / "preview-order-sign.png")


def test_screenshot_artifact_is_a_png(page: Page, live: LiveServer) -> None:
    open_patient(page, live.base_url, POSITIVE)
    path = ARTIFACTS / "preview-page.png"
    page.screenshot(path=str(path), full_page=False)
    assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
