"""The web refresh control: CSRF, token, one at a time, progress polling."""

from __future__ import annotations

import re
import threading
import time

import pytest

from tests import fake_upstream
from tests.conftest import make_app
from webapp import refresh

demo_payloads = fake_upstream.demo_payloads
upstream = fake_upstream.upstream

TOKEN = "s3cret-refresh"
HX = {"HX-Request": "true"}


@pytest.fixture
def web_app(volume, upstream):
    """An app with web refresh enabled, pointed at the fake services."""
    return make_app(
        volume, REFRESH_TOKEN=TOKEN, **upstream.config(DATA_RELOAD_CHECK_SECONDS=0)
    )


def csrf_from(client) -> str:
    """Open the context page and return the CSRF token of its refresh form."""
    page = client.get("/context").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def wait_until_done(client, timeout: float = 30.0):
    """Poll the progress fragment like htmx does until it answers 286."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get("/ajax/refresh/progress", headers=HX)
        if response.status_code == 286:
            return response
        assert response.status_code == 200
        time.sleep(0.05)
    raise AssertionError("the refresh did not finish")


def test_without_a_token_the_control_explains_the_cli(client):
    page = client.get("/context").get_data(as_text=True)

    assert "Mettre à jour les données" in page
    assert "flask --app webapp data refresh" in page
    assert 'hx-post="/ajax/refresh"' not in page

    with client.session_transaction() as session:
        session["_csrf_token"] = "known"
    response = client.post(
        "/ajax/refresh", data={"csrf_token": "known", "token": "x"}, headers=HX
    )
    assert response.status_code == 403
    assert "flask --app webapp data refresh" in response.get_data(as_text=True)


def test_post_without_the_csrf_token_is_refused(web_app):
    client = web_app.test_client()
    csrf_from(client)

    response = client.post("/ajax/refresh", data={"token": TOKEN}, headers=HX)

    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert "jeton de sécurité" in body
    assert "<html" not in body
    assert not (web_app.extensions["store"].volume / "refresh" / "lock").exists()


def test_a_wrong_refresh_token_is_refused(web_app):
    client = web_app.test_client()
    csrf = csrf_from(client)

    response = client.post(
        "/ajax/refresh", data={"csrf_token": csrf, "token": "nope"}, headers=HX
    )

    assert response.status_code == 403
    assert "Jeton de mise à jour incorrect" in response.get_data(as_text=True)


def test_web_refresh_runs_in_background_and_shows_the_new_summary(web_app):
    client = web_app.test_client()
    csrf = csrf_from(client)

    started = client.post(
        "/ajax/refresh",
        data={"csrf_token": csrf, "token": TOKEN, "source": "all"},
        headers=HX,
    )

    assert started.status_code == 202
    body = started.get_data(as_text=True)
    assert 'hx-get="/ajax/refresh/progress"' in body
    assert 'hx-trigger="every 1s"' in body
    assert "<html" not in body

    done = wait_until_done(client)
    final = done.get_data(as_text=True)
    assert "Mise à jour terminée" in final
    assert 'hx-trigger="every 1s"' not in final
    assert 'id="context-summary" hx-swap-oob="true"' in final
    assert ">API<" in final
    store = web_app.extensions["store"]
    assert {s["origin"] for s in store.sources.values()} == {"api"}
    assert not refresh.RefreshLock(store.volume).is_held_elsewhere()


def test_a_second_request_is_told_one_is_running(web_app, upstream):
    event = threading.Event()
    upstream.block = (lambda r: "dpe03existant/lines" in r.path, event)
    client = web_app.test_client()
    csrf = csrf_from(client)
    form = {"csrf_token": csrf, "token": TOKEN, "source": "ademe"}
    try:
        assert client.post("/ajax/refresh", data=form, headers=HX).status_code == 202
        assert upstream.reached.wait(timeout=30)

        second = client.post("/ajax/refresh", data=form, headers=HX)
        progress = client.get("/ajax/refresh/progress", headers=HX)
        page = client.get("/context").get_data(as_text=True)
    finally:
        event.set()
        upstream.block = None

    assert second.status_code == 409
    assert "déjà en cours" in second.get_data(as_text=True)
    assert progress.status_code == 200
    assert "DPE (ADEME)</strong> : en cours" in progress.get_data(as_text=True)
    # The context page shows the running refresh, polling.
    assert 'hx-trigger="every 1s"' in page
    assert "Mise à jour terminée" in wait_until_done(client).get_data(as_text=True)


def test_a_failed_web_refresh_reports_the_reason(web_app, upstream):
    upstream.fail("html", "dpe02neuf/lines")
    client = web_app.test_client()
    csrf = csrf_from(client)

    client.post(
        "/ajax/refresh",
        data={"csrf_token": csrf, "token": TOKEN, "source": "ademe"},
        headers=HX,
    )
    final = wait_until_done(client).get_data(as_text=True)

    assert "La mise à jour a échoué" in final
    assert "HTML page instead of JSON" in final
    assert web_app.extensions["store"].sources["dpe"]["origin"] == "demo"


def test_progress_polls_on_until_new_workers_serve_the_new_data(web_app, upstream):
    store = web_app.extensions["store"]
    asked = []
    # As under gunicorn: the master is asked for new workers, this one waits.
    store.reload_requester = lambda stamp: asked.append(stamp) or True
    client = web_app.test_client()
    form = {"csrf_token": csrf_from(client), "token": TOKEN, "source": "communes"}
    assert client.post("/ajax/refresh", data=form, headers=HX).status_code == 202
    deadline = time.monotonic() + 30
    while refresh.current_status(store)["running"] and time.monotonic() < deadline:
        time.sleep(0.05)

    waiting = client.get("/ajax/refresh/progress", headers=HX)

    assert waiting.status_code == 200
    assert "mise en service des nouvelles données" in waiting.get_data(as_text=True)
    assert asked and store.sources["communes"]["origin"] != "api"
    # A new worker (here: this one, loading itself) serves the new data.
    store.reload_requester = None
    assert "Mise à jour terminée" in wait_until_done(client).get_data(as_text=True)
    assert store.sources["communes"]["origin"] == "api"


def test_progress_without_any_refresh_stops_polling(client):
    response = client.get("/ajax/refresh/progress", headers=HX)

    assert response.status_code == 286
    assert "Aucune mise à jour" in response.get_data(as_text=True)


def test_an_unknown_source_is_a_400(web_app):
    client = web_app.test_client()
    csrf = csrf_from(client)

    response = client.post(
        "/ajax/refresh",
        data={"csrf_token": csrf, "token": TOKEN, "source": "cadastre"},
        headers=HX,
    )

    assert response.status_code == 400
    assert "Source inconnue" in response.get_data(as_text=True)
