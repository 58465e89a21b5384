"""The OpenAPI document: valid 3.1, in step with the routes, honoured by the app."""

from __future__ import annotations

import re

import pytest
import schemathesis
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from openapi_spec_validator import validate
from schemathesis.checks import positive_data_acceptance

from tests.conftest import make_app
from tests.test_prediction import FakePredictor
from tests.test_prediction import FakeRegistry
from webapp import prediction
from webapp.api.openapi import EXAMPLE_HOME

#: Methods Flask adds by itself to every rule.
IMPLICIT_METHODS = {"HEAD", "OPTIONS"}


@pytest.fixture(scope="module")
def api_app(tmp_path_factory):
    app = make_app(tmp_path_factory.mktemp("volume"))
    app.extensions["models"] = FakeRegistry(FakePredictor())
    return app


@pytest.fixture(scope="module")
def spec(api_app):
    response = api_app.test_client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.json


def test_document_is_valid_openapi_3_1(spec):
    validate(spec)

    assert spec["openapi"] == "3.1.0"


def test_document_matches_the_api_routes(api_app, spec):
    routes: dict[str, set[str]] = {}
    for rule in api_app.url_map.iter_rules():
        if rule.rule.startswith("/api/v1/"):
            path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
            routes.setdefault(path, set()).update(rule.methods - IMPLICIT_METHODS)
    documented = {
        path: {method.upper() for method in item}
        for path, item in spec["paths"].items()
    }

    assert documented == routes


def test_inputs_schema_lists_the_parser_choices(spec):
    properties = spec["components"]["schemas"]["HomeInputs"]["properties"]

    assert set(properties) == set(prediction.INPUT_FIELDS)
    for name, choices in prediction.CHOICES.items():
        assert [v for v in properties[name]["enum"] if v is not None] == list(choices)
    assert spec["components"]["schemas"]["HomeInputs"]["required"] == list(
        prediction.REQUIRED
    )


def test_documented_example_is_accepted(api_app, spec):
    example = spec["components"]["schemas"]["HomeInputs"]["example"]
    client = api_app.test_client()

    for path in ("/api/v1/etiquette_dpe", "/api/v1/consommation"):
        assert client.post(path, json=example).status_code == 200
        assert client.get(path, query_string=example).status_code == 200


def test_each_operation_documents_the_errors_it_can_answer(spec):
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            codes = set(operation["responses"])
            assert {"200", "429", "500"} <= codes, (method, path)
            if method == "post":
                assert {"400", "413", "415"} <= codes, (method, path)


def _validate(case) -> None:
    # The test transport does not inflate gzip bodies. Valid-looking data may
    # still be refused (an unknown commune code matches the pattern): the
    # document says so with its 400, so that check is left out.
    case.call_and_validate(
        headers={"Accept-Encoding": "identity"},
        excluded_checks=[positive_data_acceptance],
    )


def _valid_cases(operation) -> list:
    """Return requests that must succeed, so the 200 bodies are checked too."""
    path = operation.path
    if path.endswith("/batch"):
        return [
            operation.Case(
                body=[EXAMPLE_HOME, {"code_insee": "x"}], media_type="application/json"
            )
        ]
    if path in ("/api/v1/etiquette_dpe", "/api/v1/consommation") or path.endswith(
        "_chauffage"
    ):
        if operation.method.upper() == "GET":
            return [operation.Case(query={k: str(v) for k, v in EXAMPLE_HOME.items()})]
        return [operation.Case(body=EXAMPLE_HOME, media_type="application/json")]
    if "{code_insee}" in path:
        return [operation.Case(path_parameters={"code_insee": "74010"})]
    return [operation.Case()]


@pytest.fixture(scope="module")
def api_schema(api_app):
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", api_app)


def test_api_honours_its_document(api_schema, spec):
    """A bounded schema-driven run: statuses, content types and bodies conform."""
    # schemathesis' pytest plugin does not run under pytest 9, so each operation
    # gets its own small hypothesis run here.
    operations = [result.ok() for result in api_schema.get_all_operations()]
    failures = {}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=6,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case):
            _validate(case)

        try:
            run()
            for case in _valid_cases(operation):
                _validate(case)
        except (Exception, BaseExceptionGroup) as error:
            failures[operation.label] = f"{type(error).__name__}: {error}"[:2000]

    # schemathesis leaves out the document's own URL.
    documented = {
        f"{method.upper()} {path}"
        for path, item in spec["paths"].items()
        for method in item
        if path != "/api/v1/openapi.json"
    }
    assert {operation.label for operation in operations} == documented
    assert not failures, "\n\n".join(f"{k}: {v}" for k, v in failures.items())
