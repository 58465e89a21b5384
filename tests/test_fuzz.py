"""Hypothesis on the pages and HTMX fragments: arbitrary query strings never 500.

The targets are discovered from `app.url_map` (every GET page of `main` and every
GET route of `ajax`), so a new route is fuzzed without editing this file. Query
keys and values mix the names and option values of the rendered forms with
arbitrary text; path arguments mix real values (figure names, INSEE codes, DPE
numbers) with arbitrary text. A response must be below 500 and show no trace.
The JSON API is fuzzed from its OpenAPI document by schemathesis (issue 4).
"""

from __future__ import annotations

import functools
import re
import shutil
import tempfile
from pathlib import Path
from urllib.parse import quote
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from tests.conftest import PROJECT_DIR
from tests.conftest import make_app

#: Blueprints whose GET routes are fuzzed.
FUZZED_BLUEPRINTS = ("main", "ajax")
#: Examples per route; ~25 routes keep the file well under a minute.
EXAMPLES = 30

#: What a trace or an internal path looks like in a response body.
LEAKS = re.compile(
    r"Traceback \(most recent call last\)|File \"/|site-packages|"
    + re.escape(str(PROJECT_DIR))
    + r"|/usr/lib/python|werkzeug\.debug|jinja2\.exceptions"
)

#: Values known to trip parsers: numbers out of range, odd encodings, injections.
NASTY = [
    "",
    " ",
    "0",
    "-1",
    "1e309",
    "-1e309",
    "nan",
    "NaN",
    "inf",
    "-inf",
    "9" * 40,
    "0x1F",
    "1,5",
    "1 000",
    "12.",
    ".5",
    "2026-02-30",
    "2026-13-01",
    "0000-00-00",
    "31/12/2024",
    "true",
    "null",
    "None",
    "[]",
    "{}",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "{{7*7}}",
    "../../../../etc/passwd",
    "%00",
    "\x00",
    "\ud7ff",
    "é" * 200,
    "' OR 1=1 --",
    "A" * 5000,
]


# --------------------------------------------------------------------------- targets


@functools.cache
def fuzz_app():
    """One app for the whole module (on a temporary volume kept for the run)."""
    folder = tempfile.TemporaryDirectory(prefix="atlas-fuzz-")
    app = make_app(Path(folder.name))
    app.extensions["fuzz_volume"] = folder
    return app


def targets() -> list:
    """The GET rules to fuzz, as pytest params named by their rule."""
    app = fuzz_app()
    rules = []
    for rule in app.url_map.iter_rules():
        blueprint = rule.endpoint.partition(".")[0]
        if blueprint in FUZZED_BLUEPRINTS and "GET" in rule.methods:
            rules.append(pytest.param(rule, id=rule.rule))
    return sorted(rules, key=lambda param: param.id)


@functools.cache
def form_vocabulary() -> tuple[list[str], list[str]]:
    """Field names and option values of every form the pages render."""
    client = fuzz_app().test_client()
    names: set[str] = set()
    values: set[str] = set()
    for rule in targets():
        rule = rule.values[0]
        if rule.endpoint.startswith("main.") and not rule.arguments:
            html = client.get(rule.rule).get_data(as_text=True)
            names |= set(re.findall(r'\bname="([^"]+)"', html))
            values |= set(re.findall(r'<option[^>]*\bvalue="([^"]*)"', html))
    return sorted(names), sorted(values)


@functools.cache
def path_values() -> dict[str, list[str]]:
    """Real values for the path arguments the routes declare."""
    from webapp import stats

    app = fuzz_app()
    store = app.extensions["store"]
    names, _ = form_vocabulary()
    codes = list(store.communes_74["code_insee"].head(5))
    numeros = list(store.dpe["numero_dpe"].astype(str).head(5))
    return {
        "name": list(stats.FIGURES),
        "field": names,
        "code_insee": codes,
        "numero_dpe": numeros,
    }


# --------------------------------------------------------------------------- strategies


def text(max_size: int) -> st.SearchStrategy[str]:
    """Any text, surrogates excluded (they cannot travel in a URL as UTF-8)."""
    return st.text(st.characters(blacklist_categories=("Cs",)), max_size=max_size)


def query_strategy() -> st.SearchStrategy[str]:
    """A query string of form names and odd or real values, or arbitrary pairs."""
    names, values = form_vocabulary()
    key = st.one_of(st.sampled_from(names or ["q"]), text(20))
    value = st.one_of(
        st.sampled_from(values or [""]),
        st.sampled_from(NASTY),
        text(60),
        st.integers(-(10**12), 10**12).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
    )
    pairs = st.lists(st.tuples(key, value), max_size=8)
    return pairs.map(lambda items: urlencode(items, doseq=True))


def path_strategy(rule) -> st.SearchStrategy[str]:
    """A path for `rule` with real or arbitrary values for its arguments."""
    known = path_values()
    arguments = sorted(rule.arguments)
    if not arguments:
        return st.just(rule.rule)
    parts = {
        name: st.one_of(
            st.sampled_from(known.get(name) or ["x"]),
            st.sampled_from(NASTY[:20]),
            text(30),
        )
        for name in arguments
    }

    def build(chosen: dict[str, str]) -> str:
        path = rule.rule
        for name, value in chosen.items():
            path = re.sub(rf"<(?:[^:<>]+:)?{name}>", quote(value, safe=""), path)
        return path

    return st.fixed_dictionaries(parts).map(build)


#: A complete, valid household of the prediction form.
HOUSEHOLD = {
    "surface_habitable_logement": "72",
    "annee_construction": "1968",
    "type_batiment": "appartement",
    "type_energie_principale_chauffage": "Gaz naturel",
    "type_generateur_chauffage": "chaudière",
    "type_installation_chauffage": "collectif",
    "qualite_isolation_enveloppe": "moyenne",
    "logement_traversant": "oui",
    "code_insee": "74010",
}


def household_strategy() -> st.SearchStrategy[str]:
    """A valid household with a few fields changed to odd values or removed.

    Mostly-valid inputs get past the parser, so the models themselves see them.
    """
    names, values = form_vocabulary()
    odd = st.one_of(st.sampled_from(NASTY), st.sampled_from(values or [""]), text(30))
    changes = st.dictionaries(
        st.sampled_from(sorted(set(HOUSEHOLD) | set(names))),
        st.one_of(st.none(), odd),
        max_size=3,
    )

    def build(changed: dict) -> str:
        inputs = dict(HOUSEHOLD)
        for name, value in changed.items():
            if value is None:
                inputs.pop(name, None)
            else:
                inputs[name] = value
        return urlencode(inputs)

    return changes.map(build)


# --------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def fuzz_client():
    """A test client of the shared fuzzing app."""
    return fuzz_app().test_client()


def check(response, url: str) -> None:
    """No 500, no trace, no internal path; /ajax errors are fragments."""
    body = response.get_data(as_text=True)
    assert response.status_code < 500, f"{url} -> {response.status_code}\n{body[:800]}"
    leak = LEAKS.search(body)
    assert leak is None, f"{url} leaks {leak.group(0)!r}\n{body[:800]}"
    if url.startswith("/ajax/") and response.status_code >= 400:
        assert "<html" not in body.lower(), f"{url}: full page for an HTMX error"


@pytest.mark.parametrize("rule", targets())
def test_arbitrary_query_strings_never_fail_the_server(fuzz_client, rule):
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(path=path_strategy(rule), query=query_strategy(), htmx=st.booleans())
    def fuzz(path, query, htmx):
        url = f"{path}?{query}" if query else path
        headers = {"HX-Request": "true"} if htmx else {}
        check(fuzz_client.get(url, headers=headers), url)

    fuzz()


def prediction_targets() -> list:
    """The prediction page and fragments (the routes the models answer)."""
    return [p for p in targets() if "predict" in p.id]


@pytest.fixture(scope="module")
def fuzz_models_client(request, tmp_path_factory):
    """A client of an app with the session's small trained models."""
    try:
        training = request.getfixturevalue("ml_training")
    except pytest.FixtureLookupError:
        pytest.skip("no ml_training fixture in tests/conftest.py: no models to fuzz")
    volume = tmp_path_factory.mktemp("fuzz-models")
    shutil.copytree(training.folder, volume / "models")
    app = make_app(volume)
    assert app.extensions["models"].predictor is not None
    return app.test_client()


@pytest.mark.parametrize("rule", prediction_targets())
def test_odd_households_never_fail_the_models(fuzz_models_client, rule):
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(path=path_strategy(rule), query=household_strategy(), htmx=st.booleans())
    def fuzz(path, query, htmx):
        url = f"{path}?{query}"
        headers = {"HX-Request": "true"} if htmx else {}
        check(fuzz_models_client.get(url, headers=headers), url)

    fuzz()


def test_every_fragment_and_page_family_is_fuzzed():
    rules = {param.id for param in targets()}

    expected = [
        "/predict",
        "/ajax/predict",
        "/ajax/stats/<name>",
        "/ajax/stats/kpis",
        "/ajax/address/suggest",
    ]
    assert set(expected) <= rules
    assert any(r.startswith("/ajax/map") for r in rules)
    assert any(r.startswith("/ajax/communes") for r in rules)
