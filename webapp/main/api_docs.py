"""The API documentation page, generated from the OpenAPI document."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from flask import render_template
from flask import request

from webapp.api.openapi import EXAMPLE_HOME
from webapp.api.openapi import get_spec
from webapp.main import bp

#: Example query strings and bodies of the operations, by (method, path).
EXAMPLE_QUERIES: dict[str, dict[str, Any]] = {
    "/api/v1/etiquette_dpe": EXAMPLE_HOME,
    "/api/v1/consommation": EXAMPLE_HOME,
    "/api/v1/consommation_chauffage": EXAMPLE_HOME,
    "/api/v1/communes": {"par_page": 5, "tri": "conso_total_mwh"},
}
EXAMPLE_PATHS = {"/api/v1/communes/{code_insee}": "/api/v1/communes/74010"}
BATCH_EXAMPLE = [
    EXAMPLE_HOME,
    {**EXAMPLE_HOME, "surface_habitable_logement": 2000},
]
#: JSON methods whose example body is shown and sent.
BODY_METHODS = ("post",)


def _resolve(spec: dict, schema: dict) -> dict:
    """Follow a local $ref of the document."""
    ref = schema.get("$ref")
    if not ref:
        return schema
    node: Any = spec
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _type_text(schema: dict) -> str:
    """Return a short French description of a parameter's accepted values."""
    if "enum" in schema:
        values = [v for v in schema["enum"] if v is not None]
        return "une valeur parmi : " + ", ".join(f"« {v} »" for v in values)
    kinds = schema.get("type", "string")
    kinds = [kinds] if isinstance(kinds, str) else kinds
    names = {
        "number": "nombre",
        "string": "texte",
        "boolean": "booléen",
        "integer": "entier",
        "array": "liste",
        "null": "null",
    }
    text = " ou ".join(names.get(k, k) for k in kinds if k != "null")
    if "minimum" in schema and "maximum" in schema:
        text += f" de {schema['minimum']:g} à {schema['maximum']:g}"
    elif "minimum" in schema:
        text += f" à partir de {schema['minimum']:g}"
    return text


def _parameters(spec: dict, operation: dict) -> list[dict[str, Any]]:
    """Return the parameters of an operation, body fields included."""
    rows = [
        {
            "name": p["name"],
            "where": {"query": "requête", "path": "chemin"}.get(p["in"], p["in"]),
            "required": p.get("required", False)
            or "Obligatoire" in p.get("description", ""),
            "type": _type_text(p["schema"]),
            "description": p.get("description", "").replace(" Obligatoire.", ""),
        }
        for p in operation.get("parameters", [])
    ]
    body = operation.get("requestBody", {}).get("content", {})
    json_schema = body.get("application/json", {}).get("schema")
    if json_schema and "$ref" in json_schema and not rows:
        schema = _resolve(spec, json_schema)
        required = set(schema.get("required", []))
        rows = [
            {
                "name": name,
                "where": "corps JSON",
                "required": name in required,
                "type": _type_text(prop),
                "description": prop.get("description", ""),
            }
            for name, prop in schema.get("properties", {}).items()
        ]
    return rows


def _python_literal(value: Any) -> str:
    """Return a Python literal of JSON-like data (True, None, not true, null)."""
    return repr(value)


def _r_list(values: dict[str, Any]) -> str:
    parts = []
    for key, value in values.items():
        if isinstance(value, str):
            parts.append(f'{key} = "{value}"')
        else:
            parts.append(f"{key} = {value}")
    return "list(" + ", ".join(parts) + ")"


def examples(method: str, path: str, base_url: str) -> dict[str, str]:
    """Return curl, Python (requests) and R (httr2) examples of one operation."""
    url = base_url + EXAMPLE_PATHS.get(path, path)
    query = EXAMPLE_QUERIES.get(path, {}) if method == "get" else {}
    body: Any = None
    if method in BODY_METHODS:
        body = BATCH_EXAMPLE if path.endswith("/batch") else EXAMPLE_HOME
    full = f"{url}?{urlencode(query)}" if query else url

    if body is None:
        curl = f'curl "{full}"'
        python = (
            "import requests\n\n"
            f'response = requests.get("{url}"'
            + (f", params={_python_literal(query)}" if query else "")
            + ", timeout=10)\nprint(response.status_code, response.json())"
        )
        r_code = (
            "library(httr2)\n\n"
            f'resp <- request("{url}") |>\n'
            + (f"  req_url_query(!!!{_r_list(query)}) |>\n" if query else "")
            + "  req_error(is_error = \\(resp) FALSE) |>\n"
            "  req_perform()\nresp_status(resp)\nstr(resp_body_json(resp))"
        )
    else:
        payload = json.dumps(body, ensure_ascii=False)
        curl = (
            f'curl -X POST "{url}" \\\n  -H "Content-Type: application/json" \\\n'
            f"  -d '{payload}'"
        )
        python = (
            "import requests\n\n"
            f"payload = {_python_literal(body)}\n"
            f'response = requests.post("{url}", json=payload, timeout=10)\n'
            "print(response.status_code, response.json())"
        )
        r_body = (
            "list(" + ", ".join(_r_list(row) for row in body) + ")"
            if isinstance(body, list)
            else _r_list(body)
        )
        r_code = (
            "library(httr2)\n\n"
            f'resp <- request("{url}") |>\n'
            f"  req_body_json({r_body}) |>\n"
            "  req_error(is_error = \\(resp) FALSE) |>\n"
            "  req_perform()\nresp_status(resp)\nstr(resp_body_json(resp))"
        )
        if path.endswith("/batch"):
            curl += (
                f'\n\n# Ou un fichier CSV :\ncurl -X POST "{url}" '
                '-H "Content-Type: text/csv" --data-binary @logements.csv'
            )
    return {"curl": curl, "python": python, "r": r_code}


def operations(spec: dict, base_url: str) -> list[dict[str, Any]]:
    """Return every operation of the document, ready for the template."""
    items = []
    for path, path_item in spec["paths"].items():
        for method, operation in path_item.items():
            body = None
            if method in BODY_METHODS:
                example = BATCH_EXAMPLE if path.endswith("/batch") else EXAMPLE_HOME
                body = json.dumps(example, ensure_ascii=False, indent=2)
            query = EXAMPLE_QUERIES.get(path, {}) if method == "get" else {}
            items.append(
                {
                    "id": f"{method}-{path.strip('/').replace('/', '-')}".replace(
                        "{", ""
                    ).replace("}", ""),
                    "method": method.upper(),
                    "path": path,
                    "example_path": EXAMPLE_PATHS.get(path, path),
                    "tag": (operation.get("tags") or ["API"])[0],
                    "summary": operation.get("summary", ""),
                    "description": operation.get("description", ""),
                    "parameters": _parameters(spec, operation),
                    "responses": [
                        (code, response.get("description", ""))
                        for code, response in operation["responses"].items()
                    ],
                    "examples": examples(method, path, base_url),
                    "query": urlencode(query),
                    "body": body,
                }
            )
    return items


@bp.get("/api-documentation")
def api_docs():
    """Show the API documentation generated from the OpenAPI document."""
    spec = get_spec()
    base_url = request.host_url.rstrip("/")
    return render_template(
        "api_docs.html",
        spec=spec,
        base_url=base_url,
        operations=operations(spec, base_url),
    )
