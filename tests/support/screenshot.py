"""`make screenshot`: the README's card picture, taken from the real preview page.

Starts `spine-cds serve --demo`, opens the preview page in Debian's Chromium, chooses the positive
fixture patient and saves the chart pane (the card as the EHR shows it) to docs/img/preview-card.png.
`screenshot.py TARGET SCENARIO` takes another fixture's card (issue 15's before/after pictures:
docs/img/after-refer-card.png from 01-osteoporotic-l1-mri, after-contraindicated-card.png from
53-infection-recent).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playwright.sync_api import sync_playwright

from support.live import ROOT, ensure_chromium, launch_chromium, open_patient, screenshot_chart, serve

SCENARIO = "01-osteoporotic-l1-mri"


def main() -> int:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "img" / "preview-card.png"
    scenario = sys.argv[2] if len(sys.argv) > 2 else SCENARIO
    executable, why_not = ensure_chromium()
    if executable is None:
        sys.stderr.write(f"screenshot: {why_not}\n")
        return 1
    with serve(demo=True) as server, sync_playwright() as playwright:
        browser = launch_chromium(playwright, executable)
        page = browser.new_page(viewport={"width": 1100, "height": 800})
        open_patient(page, server.base_url, scenario)
        if page.locator(".cds-card").count() != 1:
            sys.stderr.write("screenshot: expected one card on the preview page\n")
            return 1
        screenshot_chart(page, target)
        browser.close()
    sys.stdout.write(f"wrote {target}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
