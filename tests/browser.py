"""Open a report.html from disk in the system Chromium (Debian's chromium + chromium-driver, driven by
selenium) and check what a reader sees: the verdict and the parity table shown, every picture loaded, no
console error, no request other than data:/file: URLs; save a screenshot of the top of the page."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def available() -> bool:
    return bool(shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER) and importlib.util.find_spec("selenium"))


def check_report(page: Path, screenshot: Path) -> dict[str, object]:
    """Assert the page reads as a report offline; returns what it saw (for further asserts)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1400"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(page.resolve().as_uri())
        verdict = driver.find_element(By.ID, "verdict")
        assert verdict.is_displayed() and "Policy decision" in verdict.text, verdict.text
        parity = driver.find_element(By.ID, "parity-table")
        rows = parity.find_elements(By.CSS_SELECTOR, "tbody tr")
        assert parity.is_displayed() and rows, "the parity table is shown, with rows"
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])")
        assert all(complete and width > 0 for _, complete, width in images), images
        resources = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        requested = [json.loads(entry["message"])["message"] for entry in driver.get_log("performance")]
        urls = [m["params"]["request"]["url"] for m in requested if m["method"] == "Network.requestWillBeSent"]
        offline = [u for u in [*resources, *urls] if not u.startswith(("data:", "file:"))]
        assert not offline, f"network requests: {offline}"
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        assert driver.save_screenshot(str(screenshot))
        return {"images": images, "verdict": verdict.text, "parity_rows": [r.text for r in rows], "urls": urls}
    finally:
        driver.quit()
