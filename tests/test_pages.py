"""Pages, fragments and JSON errors: each audience gets its own shape."""

from __future__ import annotations

import pytest

import webapp


def test_context_page_shows_the_live_summary(client, app):
    response = client.get("/context")

    assert response.status_code == 200
    html = response.get_data(as_text=True)
    store = app.extensions["store"]
    assert "Les données en service" in html
    assert "Données de démonstration" in html
    assert "Licence Ouverte 2.0" in html
    rows = f"{len(store.dpe):,}".replace(",", "\u202f")
    assert rows in html
    assert "kWh/m²/an" in html
    assert "data.ademe.fr" in html and "enedis" in html and "data.gouv.fr" in html


def test_home_page_answers(client):
    response = client.get("/")

    assert response.status_code == 200
    assert "<nav" in response.get_data(as_text=True)


def test_navigation_lists_only_existing_pages(client, app):
    html = client.get("/context").get_data(as_text=True)

    assert 'href="/context"' in html
    for endpoint, label in [("main.stats", "Statistiques"), ("main.map", "Carte")]:
        assert (f">{label}</a>" in html) == (endpoint in app.view_functions)


def test_assets_are_local_and_versioned(client):
    html = client.get("/context").get_data(as_text=True)

    assert "/static/vendor/htmx-2.0.11.min.js" in html
    assert "/static/vendor/plotly-" in html
    assert "cdn" not in html.lower()


def test_plotly_js_is_served_from_the_installed_package(client):
    import plotly

    response = client.get(f"/static/vendor/plotly-{plotly.__version__}.min.js")

    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert b"plotly" in response.data[:2000].lower()
    assert response.cache_control.max_age > 86400
    assert client.get("/static/vendor/plotly-0.0.1.min.js").status_code == 404


def test_htmx_is_vendored_with_its_licence():
    from tests.conftest import PROJECT_DIR

    vendor = PROJECT_DIR / "webapp" / "static" / "vendor"
    assert (vendor / "htmx-2.0.11.min.js").stat().st_size > 10_000
    assert "Zero-Clause BSD" in (vendor / "htmx-LICENSE.txt").read_text()


def test_responses_are_gzipped_when_accepted(client):
    plain = client.get("/context")
    zipped = client.get("/context", headers={"Accept-Encoding": "gzip"})

    assert zipped.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in zipped.headers["Vary"]
    assert len(zipped.data) < len(plain.data)


def test_health_reports_versions(client, app):
    response = client.get("/api/v1/health")

    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert body["version"] == webapp.__version__
    assert set(body["data"]) >= {"communes", "dpe", "enedis"}
    dpe = body["data"]["dpe"]
    assert dpe["origin"] == "demo"
    assert dpe["rows"] == len(app.extensions["store"].dpe)
    assert dpe["updated_at"]
    assert "models" in body


def test_unknown_api_url_is_json_404(client):
    response = client.get("/api/v1/nope")

    assert response.status_code == 404
    assert response.is_json
    assert response.get_json()["error"]["code"] == "not_found"
    assert response.get_json()["error"]["message"]


def test_api_method_not_allowed_is_json(client):
    response = client.delete("/api/v1/health")

    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]


def test_unknown_fragment_is_a_fragment_404(client, htmx_headers):
    response = client.get("/ajax/nope", headers=htmx_headers)

    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert 'class="fragment-error"' in html
    assert "<html" not in html and "<nav" not in html


def test_unknown_page_is_an_html_404_page(client):
    response = client.get("/nulle-part")

    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert "<html" in html and "Page introuvable" in html


@pytest.mark.parametrize(
    ("path", "kind"),
    [("/boom", "page"), ("/ajax/boom", "fragment"), ("/api/v1/boom", "json")],
    ids=["page", "fragment", "json"],
)
def test_unexpected_errors_never_show_a_trace(app, path, kind):
    def boom():
        raise RuntimeError("secret internal detail")

    app.add_url_rule(path, f"boom_{kind}", boom)
    response = app.test_client().get(path)

    assert response.status_code == 500
    text = response.get_data(as_text=True)
    assert "secret internal detail" not in text
    assert "Traceback" not in text
    if kind == "json":
        assert response.get_json()["error"]["code"] == "internal_error"
    elif kind == "fragment":
        assert "<html" not in text
    else:
        assert "<html" in text


def test_context_summary_fragment_has_no_layout(client, htmx_headers):
    response = client.get("/ajax/context/summary", headers=htmx_headers)

    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Les données en service" in html
    assert "<html" not in html and "<footer" not in html


def test_footer_shows_the_last_data_update(client):
    html = client.get("/context").get_data(as_text=True)

    assert "Dernière mise à jour des données : 31 octobre 2026" in html


def test_readiness_fails_without_models(client, app):
    response = client.get("/api/v1/ready")

    registry = app.extensions.get("models")
    has_model = registry is not None and registry.predictor is not None
    assert response.status_code == (200 if has_model else 503)
    body = response.get_json()
    assert body["checks"]["data"] is True
    assert body["checks"]["models"] is has_model


def test_cors_is_open_for_get_on_the_api_even_for_unknown_urls(client):
    assert client.get("/api/v1/health").headers["Access-Control-Allow-Origin"] == "*"
    assert client.get("/api/v1/nope").headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Origin" not in client.get("/context").headers
    assert "Access-Control-Allow-Origin" not in client.post("/api/v1/nope").headers
