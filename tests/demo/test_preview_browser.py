"""The preview page in a real headless Chromium against a real `spine-cds serve --demo`.

Chromium is Debian's package (installed by the test setup when missing and we are root); the test
skips only where it cannot be installed. Screenshots go to tests/artifacts/ (gitignored).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from support.live import ARTIFACTS, ROOT, LiveServer, ensure_chromium, launch_chromium, open_patient, serve
from support.live import screenshot_chart as save_chart

from cds_service.core.card_builder import load_card_content

POSITIVE = "01-osteoporotic-l1-mri"
NEGATIVE = "76-noise-only"
FIXTURES = ROOT / "fhir_fixtures"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    database = tmp_path_factory.mktemp("preview-db") / "cds.sqlite"
    with serve(demo=True, env={"CDS_DATABASE_URL": f"sqlite:///{database}"}) as server:
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
    reasons = [r["display"] for r in texts["override_reasons"]["refer"]]
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
    page.wait_for_selector(".override .feedback-answer[data-status]")


def test_negative_patient_shows_no_cards(page: Page, live: LiveServer) -> None:
    open_patient(page, live.base_url, NEGATIVE)
    assert page.locator("#no-cards").is_visible()
    assert "No cards" in page.locator("#no-cards").inner_text()
    assert page.locator(".cds-card").count() == 0


def test_why_panel_shows_the_services_own_explanation(page: Page, live: LiveServer) -> None:
    open_patient(page, live.base_url, POSITIVE)
    panel = page.locator("#explain")
    assert panel.is_visible()
    panel.locator("summary").click()
    lines = page.locator("#explain-lines li").all_inner_texts()
    assert any(line.startswith("Condition/s01-fx [icd-10-cm M80.08XA]: matched trigger") for line in lines)
    assert any(line.startswith("ImagingStudy/s01-mri: matched imaging: spine MR") for line in lines)
    assert lines[-1].startswith("decision: refer: 1 recent fracture(s) (L1)")
    open_patient(page, live.base_url, NEGATIVE)
    assert page.locator("#explain").is_visible()
    lines = page.locator("#explain-lines li").all_text_contents()
    assert "Condition/s76-hip-fracture [snomed 359817006]: set aside, no code the rules know" in lines
    assert lines[-1] == "decision: no card: no recent qualifying fracture"


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
    page.click('button.hook[data-hook="order-sign"]')
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


def _scenario(name: str) -> dict[str, Any]:
    meta: dict[str, Any] = json.loads((FIXTURES / name / "scenario.json").read_text())
    return meta


def _wait_for_answer(page: Page) -> None:
    page.wait_for_selector('#cards[data-state="done"], #cards[data-state="error"]')


def test_chart_header_is_the_patient_banner(page: Page, live: LiveServer) -> None:
    open_patient(page, live.base_url, POSITIVE)
    # Fixture 01's Patient resource: Dorothy Ellison, female, born 1948-04-12 (rebased with the record).
    assert page.locator("#chart-title").inner_text() == "Dorothy Ellison"
    assert page.locator("#banner-age").inner_text() == "78 y"
    assert page.locator("#banner-sex").inner_text() == "female"
    assert POSITIVE in page.locator("#banner-scenario").inner_text()
    save_chart(page, ARTIFACTS / "preview-banner.png")


ORDER_FIXTURES = sorted(p.name for p in FIXTURES.iterdir() if p.name[:2] in {f"{n}" for n in range(91, 100)})


def test_every_order_fixture_runs_its_own_hook_and_shows_what_it_promises(
    page: Page, live: LiveServer
) -> None:
    assert len(ORDER_FIXTURES) == 9
    for name in ORDER_FIXTURES:
        meta = _scenario(name)
        page.goto(live.base_url + "/")
        page.click(f'button.patient[data-scenario="{name}"]')
        _wait_for_answer(page)
        assert (
            page.locator(f'button.hook[data-hook="{meta["hook"]}"]').get_attribute("aria-pressed") == "true"
        )
        page.check("#raw-toggle")
        request = json.loads(page.locator("#raw-request").inner_text())
        assert request["hook"] == meta["hook"], name
        drafted = [e["resource"]["id"] for e in request["context"]["draftOrders"]["entry"]]
        assert drafted == [e["resource"]["id"] for e in meta["context"]["draftOrders"]["entry"]], name
        if meta["hook"] == "order-select":
            assert request["context"]["selections"] == meta["context"]["selections"], name
        cards = page.locator(".cds-card")
        assert cards.count() == meta["expected"]["cards"], name
        if meta["expected"]["cards"]:
            assert cards.first.get_attribute("data-indicator") == meta["expected"]["indicator"], name
        else:
            assert page.locator("#no-cards").is_visible()
        if name.startswith("93"):
            save_chart(page, ARTIFACTS / "preview-order-fixture-93.png")


def test_page_offers_all_three_hooks_for_any_patient(page: Page, live: LiveServer) -> None:
    open_patient(page, live.base_url, POSITIVE)
    hooks = page.locator("button.hook").all_inner_texts()
    assert hooks == ["patient-view", "order-select", "order-sign"]
    page.check("#raw-toggle")
    page.click('button.hook[data-hook="order-select"]')
    # A locator wait, not wait_for_function: the page's CSP (script-src 'self') forbids the eval that
    # Playwright's function polling needs, so that wait failed whenever the answer was not already there.
    expect(page.locator("#raw-request")).to_contain_text('"hook": "order-select"')
    _wait_for_answer(page)
    request = json.loads(page.locator("#raw-request").inner_text())
    order = request["context"]["draftOrders"]["entry"][0]["resource"]
    assert request["context"]["selections"] == [f"ServiceRequest/{order['id']}"]
    # A recent L1 fracture with nothing against it: the kyphoplasty order raises nothing.
    assert page.locator("#no-cards").is_visible()
    assert page.locator('button.hook[data-hook="order-select"]').get_attribute("aria-pressed") == "true"
    page.click('button.hook[data-hook="patient-view"]')
    page.wait_for_selector('#cards[data-state="done"] .cds-card')
    assert page.locator(".cds-card").count() == 1


def test_descriptions_show_the_rebased_dates(page: Page, live: LiveServer) -> None:
    name = "07-snomed-thoracic-collapse-onset-age"
    meta = _scenario(name)
    shift = datetime.now(UTC).date() - date.fromisoformat(meta["asOf"])
    expected = f"born {(date(1948, 3, 2) + shift).isoformat()}, so {(date(2026, 3, 2) + shift).isoformat()}"
    page.goto(live.base_url + "/")
    listed = page.locator(f'button.patient[data-scenario="{name}"] .patient-description').inner_text()
    assert expected in listed
    page.click(f'button.patient[data-scenario="{name}"]')
    _wait_for_answer(page)
    assert expected in page.locator("#chart-description").inner_text()
    # the card shows the same rebased onset
    assert (date(2026, 3, 2) + shift).isoformat() in page.locator(".card-detail").inner_text()


def test_raw_json_wraps_and_scrolls_inside_its_panel(page: Page, live: LiveServer) -> None:
    open_patient(page, live.base_url, POSITIVE)
    viewport = page.evaluate("window.innerWidth")
    before = page.evaluate("document.documentElement.scrollWidth")
    page.check("#raw-toggle")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport, f"the raw JSON widens the page to {width} px (viewport {viewport} px)"
    assert width == before
    for panel in ("#raw-request", "#raw-response"):
        box = page.evaluate(
            f"(() => {{ const e = document.querySelector('{panel}');"
            " return {scrollW: e.scrollWidth, clientW: e.clientWidth}; })()"
        )
        assert box["scrollW"] <= box["clientW"] + 1, (panel, box)  # lines wrap: no sideways scrolling
    request = page.evaluate(
        "(() => { const e = document.querySelector('#raw-request');"
        " return [e.scrollHeight, e.clientHeight]; })()"
    )
    assert request[0] > request[1], "the request is longer than its panel and scrolls inside it"
    page.set_viewport_size({"width": 700, "height": 900})
    assert page.evaluate("document.documentElement.scrollWidth") <= 700
    save_chart(page, ARTIFACTS / "preview-raw-wrapped.png")


def test_accept_posts_cds_hooks_feedback_and_shows_the_answer(page: Page, live: LiveServer) -> None:
    open_patient(page, live.base_url, POSITIVE)
    page.check("#raw-toggle")
    card = json.loads(page.locator("#raw-response").inner_text())["cards"][0]
    with page.expect_request(lambda r: r.url.endswith("/feedback")) as sent:
        page.click(".cds-card button.cds-suggestion")
    request = sent.value
    assert request.url == f"{live.base_url}/cds-services/vertebral-augmentation-referral/feedback"
    (entry,) = json.loads(request.post_data or "{}")["feedback"]
    assert entry["card"] == card["uuid"]
    assert entry["outcome"] == "accepted"
    assert entry["acceptedSuggestions"] == [{"id": card["suggestions"][0]["uuid"]}]
    datetime.fromisoformat(entry["outcomeTimestamp"])
    assert "overrideReason" not in entry
    answer = page.locator(".suggestion-outcome .feedback-answer[data-status]")
    answer.wait_for()
    assert answer.get_attribute("data-status") == "200"
    assert '{"received":1,"new":1}' in answer.inner_text()
    save_chart(page, ARTIFACTS / "preview-feedback-accepted.png")


def test_dismiss_posts_overridden_feedback_with_the_chosen_reason(page: Page, live: LiveServer) -> None:
    open_patient(page, live.base_url, "53-infection-recent")
    page.check("#raw-toggle")
    card = json.loads(page.locator("#raw-response").inner_text())["cards"][0]
    assert "suggestions" not in card  # contraindicated: nothing to accept
    options = page.locator("select.override-reason option").all_inner_texts()[1:]
    assert options == [r["display"] for r in card["overrideReasons"]]
    assert not any("referral" in o.lower() for o in options)
    page.select_option("select.override-reason", index=1)
    with page.expect_request(lambda r: r.url.endswith("/feedback")) as sent:
        page.click("button.dismiss")
    (entry,) = json.loads(sent.value.post_data or "{}")["feedback"]
    assert entry["card"] == card["uuid"]
    assert entry["outcome"] == "overridden"
    assert entry["overrideReason"] == {"reason": card["overrideReasons"][0]}
    assert "acceptedSuggestions" not in entry
    answer = page.locator(".override .feedback-answer[data-status]")
    answer.wait_for()
    assert answer.get_attribute("data-status") == "200"
    assert '"received":1' in answer.inner_text()
    save_chart(page, ARTIFACTS / "preview-feedback-dismissed.png")


def test_sandbox_box_gives_the_discovery_url(page: Page, live: LiveServer) -> None:
    page.goto(live.base_url + "/")
    box = page.locator("#sandbox-help")
    assert box.is_visible()
    assert "How to point the CDS Hooks Sandbox at this service" in box.inner_text()
    url = page.locator("#discovery-url").inner_text()
    assert url == live.base_url + "/cds-services"
    services = page.evaluate(f"fetch('{url}').then(r => r.json())")["services"]
    assert {s["hook"] for s in services} == {"patient-view", "order-select", "order-sign"}
    box.screenshot(path=str(ARTIFACTS / "preview-sandbox-box.png"))
