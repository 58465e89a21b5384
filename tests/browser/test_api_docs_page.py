"""The API documentation page in Chromium: examples and the playground."""

from __future__ import annotations

import json


def test_playground_returns_json(live_server, page, screenshot):
    page.goto(f"{live_server.url}/api-documentation")
    assert page.locator("section.endpoint").count() >= 14

    section = page.locator("#get-api-v1-communes-code_insee")
    section.locator("summary:has-text('Exemple R (httr2)')").click()
    assert "library(httr2)" in section.locator("pre.code").nth(2).inner_text()
    section.locator("summary:has-text('Essayer')").click()
    section.locator("button:has-text('Envoyer la requête')").click()

    result = page.locator("#get-api-v1-communes-code_insee-result")
    result.locator("pre.api-response").wait_for()
    assert "200" in result.locator(".status").inner_text()
    body = json.loads(result.locator("pre.api-response").inner_text())
    assert body["code_insee"] == "74010"

    health = page.locator("#get-api-v1-health")
    health.locator("summary:has-text('Essayer')").click()
    health.locator("button:has-text('Envoyer la requête')").click()
    health.locator("pre.api-response").wait_for()
    assert json.loads(health.locator("pre.api-response").inner_text())["status"] == "ok"
    assert page.console_errors == []
    screenshot(page, "api-docs-playground")


def test_playground_shows_api_errors(live_server, page):
    page.goto(f"{live_server.url}/api-documentation")
    section = page.locator("#post-api-v1-etiquette_dpe")
    section.locator("summary:has-text('Essayer')").click()
    section.locator("textarea").fill('{"surface_habitable_logement": 2}')
    section.locator("button:has-text('Envoyer la requête')").click()

    result = page.locator("#post-api-v1-etiquette_dpe-result")
    result.locator("pre.api-response").wait_for()
    status = result.locator(".status").get_attribute("data-status")
    body = json.loads(result.locator("pre.api-response").inner_text())
    assert status == "400"
    assert "surface_habitable_logement" in body["error"]["fields"]
    assert page.console_errors == []
