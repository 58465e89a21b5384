"""The OpenAPI 3.1 document of the API, built from the input definitions in use."""

from __future__ import annotations

import copy
import re
from typing import Any

from flask import current_app
from flask import jsonify
from flask import request

import webapp
from webapp import prediction
from webapp import rules
from webapp.api import bp
from webapp.api.predict import BATCH_MAX_BYTES
from webapp.api.predict import BATCH_MAX_ROWS
from webapp.errors import CODES
from webapp.errors import TITLES

#: An example home, used by the documentation, its playground and the tests.
EXAMPLE_HOME: dict[str, Any] = {
    "surface_habitable_logement": 72,
    "annee_construction": 1968,
    "type_batiment": "appartement",
    "type_energie_principale_chauffage": "Gaz naturel",
    "type_installation_chauffage": "individuel",
    "qualite_isolation_enveloppe": "moyenne",
    "code_insee": "74010",
}

#: Descriptions (French, shown on the documentation page) of each input.
INPUT_DOCS: dict[str, str] = {
    "surface_habitable_logement": "Surface habitable en m², de 5 à 1 000.",
    "annee_construction": (
        "Année de construction, de 1600 à l'année en cours. Obligatoire sauf si "
        "periode_construction est donnée."
    ),
    "periode_construction": "Période de construction ADEME (à la place de l'année).",
    "type_batiment": "Type de logement.",
    "type_energie_principale_chauffage": "Énergie principale de chauffage (ADEME).",
    "type_generateur_chauffage": "Famille d'équipement de chauffage (facultatif).",
    "type_installation_chauffage": "Chauffage individuel ou collectif.",
    "qualite_isolation_enveloppe": (
        "Qualité de l'isolation ; « je ne sais pas » ou absent = inconnue."
    ),
    "logement_traversant": "Logement traversant : true/false, oui/non (facultatif).",
    "protection_solaire_exterieure": (
        "Protections solaires extérieures : true/false, oui/non (facultatif)."
    ),
    "code_insee": "Code INSEE d'une commune de Haute-Savoie (74001 à 74315).",
    "code_postal": "Code postal de Haute-Savoie (la commune la plus peuplée).",
    "latitude": "Latitude WGS 84 (avec longitude) : commune la plus proche.",
    "longitude": "Longitude WGS 84 (avec latitude).",
    "zone_climatique": "Zone climatique ; remplace celle de la commune.",
    "classe_altitude": "Classe d'altitude ADEME ; sinon déduite de l'altitude.",
    "altitude": "Altitude en m (0 à 4 810) ; avec zone_climatique sans commune.",
}

NUMBER_OR_TEXT = ["number", "string"]
BOOL_OR_TEXT = ["boolean", "string", "null"]


def _input_schema(name: str) -> dict[str, Any]:
    """Return the JSON schema of one input, as the parser accepts it."""
    schema: dict[str, Any]
    if name in prediction.CHOICES:
        schema = {"type": ["string", "null"], "enum": [*prediction.CHOICES[name], None]}
    elif name in prediction.BOOLEANS:
        schema = {"type": BOOL_OR_TEXT}
    elif name in ("code_insee", "code_postal"):
        schema = {"type": ["string", "null"], "pattern": r"^\d{5}$"}
    else:
        schema = {"type": [*NUMBER_OR_TEXT, "null"]}
    if name == "surface_habitable_logement":
        schema["minimum"] = prediction.SURFACE_RANGE[0]
        schema["maximum"] = prediction.SURFACE_RANGE[1]
    elif name == "annee_construction":
        schema["minimum"] = prediction.YEAR_MIN
    schema["description"] = INPUT_DOCS[name]
    return schema


def inputs_schema() -> dict[str, Any]:
    """Return the schema of one home's inputs."""
    return {
        "type": "object",
        "description": (
            "Un logement. Localisation : code_insee, code_postal, latitude et "
            "longitude, ou zone_climatique et altitude. Les champs inconnus sont "
            "ignorés."
        ),
        "properties": {name: _input_schema(name) for name in prediction.INPUT_FIELDS},
        "required": list(prediction.REQUIRED),
        "example": EXAMPLE_HOME,
    }


def _query_parameters() -> list[dict[str, Any]]:
    params = []
    for name in prediction.INPUT_FIELDS:
        schema = _input_schema(name)
        description = schema.pop("description")
        if name in prediction.CHOICES:
            schema = {"type": "string", "enum": list(prediction.CHOICES[name])}
        elif name in prediction.BOOLEANS:
            schema = {"type": "string", "enum": ["true", "false", "oui", "non"]}
        else:
            schema = {
                k: v for k, v in schema.items() if k not in ("minimum", "maximum")
            }
            schema["type"] = "string"
        params.append(
            {
                "name": name,
                "in": "query",
                "required": False,
                "description": description
                + (" Obligatoire." if name in prediction.REQUIRED else ""),
                "schema": schema,
                **(
                    {"example": str(EXAMPLE_HOME[name])} if name in EXAMPLE_HOME else {}
                ),
            }
        )
    return params


def _location_schema() -> dict[str, Any]:
    text = {"type": ["string", "null"]}
    return {
        "type": "object",
        "description": "La localisation retenue et ses caractéristiques.",
        "properties": {
            "source": {
                "type": "string",
                "enum": ["code_insee", "code_postal", "coordonnees", "explicite"],
            },
            "code_insee": text,
            "nom_commune": text,
            "code_postal": text,
            "zone_climatique": {
                "type": "string",
                "enum": list(rules.ZONES_CLIMATIQUES),
            },
            "classe_altitude": {"type": "string", "enum": list(rules.CLASSES_ALTITUDE)},
            "altitude": {"type": ["number", "null"]},
            "densite": {"type": ["number", "null"]},
        },
        "required": ["source", "zone_climatique", "classe_altitude"],
    }


def _pair(kind: str = "number") -> dict[str, Any]:
    return {"type": "array", "items": {"type": kind}, "minItems": 2, "maxItems": 2}


def _schemas() -> dict[str, Any]:
    labels = list(rules.LABELS)
    common = {
        "model_version": {"type": "string"},
        "location": {"$ref": "#/components/schemas/Location"},
        "inputs": {
            "type": "object",
            "description": "Les entrées transmises au modèle, après lecture.",
        },
    }
    label = {
        "type": "object",
        "properties": {
            "etiquette_dpe": {"type": "string", "enum": labels},
            "probabilities": {
                "type": "object",
                "properties": {k: {"type": "number"} for k in labels},
                "required": labels,
            },
            "passoire": {"type": "boolean"},
            "passoire_probability": {"type": "number", "minimum": 0, "maximum": 1},
            "passoire_threshold": {"type": "number"},
            "etiquette_derivee": {
                "type": ["string", "null"],
                "description": "Étiquette donnée par les seuils appliqués aux "
                "valeurs prédites d'énergie primaire et de GES.",
            },
            **common,
        },
        "required": [
            "etiquette_dpe",
            "probabilities",
            "passoire",
            "passoire_probability",
            "model_version",
            "location",
        ],
    }
    consumption = {
        "type": "object",
        "properties": {
            "conso_5_usages_par_m2_ep": {"type": "number"},
            "conso_5_usages_par_m2_ep_interval": _pair(),
            "conso_5_usages_ep": {"type": "number"},
            "conso_5_usages_ep_interval": _pair(),
            "emission_ges_5_usages_par_m2": {"type": "number"},
            "cout_total_5_usages": {"type": ["number", "null"]},
            "cout_total_5_usages_interval": {
                "oneOf": [_pair(), {"type": "null"}],
            },
            "interval_level": {"type": "number"},
            **common,
        },
        "required": [
            "conso_5_usages_par_m2_ep",
            "conso_5_usages_par_m2_ep_interval",
            "conso_5_usages_ep",
            "conso_5_usages_ep_interval",
            "cout_total_5_usages",
            "model_version",
            "location",
        ],
    }
    row_error = {
        "type": "object",
        "properties": {
            "index": {"type": "integer"},
            "ok": {"const": False},
            "error": {"$ref": "#/components/schemas/ErrorBody"},
        },
        "required": ["index", "ok", "error"],
    }
    error_body = {
        "type": "object",
        "properties": {
            "code": {"type": "string", "enum": sorted(set(CODES.values()))},
            "message": {"type": "string"},
            "fields": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Un message en français par champ invalide.",
            },
        },
        "required": ["code", "message"],
    }

    def batch(item: str) -> dict[str, Any]:
        ok_row = {
            "allOf": [
                {"$ref": f"#/components/schemas/{item}"},
                {
                    "type": "object",
                    "properties": {"index": {"type": "integer"}, "ok": {"const": True}},
                    "required": ["index", "ok"],
                },
            ]
        }
        return {
            "type": "object",
            "properties": {
                "count": {"type": "integer"},
                "errors": {"type": "integer"},
                "results": {
                    "type": "array",
                    "items": {
                        "oneOf": [ok_row, {"$ref": "#/components/schemas/RowError"}]
                    },
                },
            },
            "required": ["count", "errors", "results"],
        }

    return {
        "HomeInputs": inputs_schema(),
        "Location": _location_schema(),
        "LabelPrediction": label,
        "ConsumptionPrediction": consumption,
        "LabelBatch": batch("LabelPrediction"),
        "ConsumptionBatch": batch("ConsumptionPrediction"),
        "RowError": row_error,
        "ErrorBody": error_body,
        "Error": {
            "type": "object",
            "properties": {"error": {"$ref": "#/components/schemas/ErrorBody"}},
            "required": ["error"],
        },
        "ModelCard": {
            "type": "object",
            "description": "Résumé du modèle : version, métriques, origine et dates "
            "des données d'entraînement.",
        },
        "Health": {
            "type": "object",
            "properties": {
                "status": {"type": "string"},
                "version": {"type": "string"},
                "data": {"type": "object"},
                "models": {"type": "object"},
            },
            "required": ["status", "version", "data", "models"],
        },
        "Ready": {
            "type": "object",
            "properties": {
                "status": {"type": "string", "enum": ["ready", "not_ready"]},
                "checks": {
                    "type": "object",
                    "additionalProperties": {"type": "boolean"},
                },
                "version": {"type": "string"},
                "data": {"type": "object"},
                "models": {"type": "object"},
            },
            "required": ["status", "checks"],
        },
    }


def _error(status: int) -> dict[str, Any]:
    response = {
        "description": TITLES.get(status, "Erreur"),
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
        },
    }
    if status == 429:
        response["headers"] = {
            "Retry-After": {
                "description": "Secondes à attendre avant de réessayer.",
                "schema": {"type": "integer"},
            }
        }
    return response


def _ok(schema: str, description: str, cors: bool = True) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}
        },
    }
    if cors:
        response["headers"] = {
            "Access-Control-Allow-Origin": {"schema": {"type": "string", "const": "*"}}
        }
    return response


def _responses(ok: dict, *errors: int) -> dict[str, Any]:
    responses = {"200": ok}
    for status in (*errors, 429, 500):
        responses[str(status)] = _error(status)
    return responses


def _single(tag: str, schema: str, summary: str, description: str) -> dict:
    """Return the GET and POST operations of a single-prediction endpoint."""
    ok_get = _ok(schema, "La prédiction.")
    ok_post = _ok(schema, "La prédiction.", cors=False)
    return {
        "get": {
            "tags": [tag],
            "summary": summary,
            "description": description + " Entrées dans la chaîne de requête.",
            "parameters": _query_parameters(),
            "responses": _responses(ok_get, 400, 503),
        },
        "post": {
            "tags": [tag],
            "summary": summary + " (corps JSON ou formulaire)",
            "description": description
            + " Entrées dans un corps JSON (ou formulaire) ; corps de 64 Ko au plus.",
            "requestBody": {
                "required": False,
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/HomeInputs"},
                        "example": EXAMPLE_HOME,
                    },
                    "application/x-www-form-urlencoded": {
                        "schema": {"$ref": "#/components/schemas/HomeInputs"}
                    },
                },
            },
            "responses": _responses(ok_post, 400, 413, 415, 503),
        },
    }


def _batch(tag: str, schema: str, summary: str) -> dict:
    csv_text = ",".join(EXAMPLE_HOME) + "\n" + ",".join(map(str, EXAMPLE_HOME.values()))
    return {
        "post": {
            "tags": [tag],
            "summary": summary,
            "description": (
                f"Jusqu'à {BATCH_MAX_ROWS} logements, en liste JSON (ou objet "
                '{"rows": [...]}), en CSV (text/csv, séparateur , ou ;) ou en '
                "fichier CSV envoyé dans le champ « file » (multipart/form-data). "
                "Les résultats suivent l'ordre des lignes ; une ligne invalide "
                "donne son erreur à sa place. Corps de "
                f"{BATCH_MAX_BYTES // 1024} Ko au plus."
            ),
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "oneOf": [
                                {
                                    "type": "array",
                                    "items": {
                                        "$ref": "#/components/schemas/HomeInputs"
                                    },
                                    "minItems": 1,
                                    "maxItems": BATCH_MAX_ROWS,
                                },
                                {
                                    "type": "object",
                                    "properties": {
                                        "rows": {
                                            "type": "array",
                                            "items": {
                                                "$ref": "#/components/schemas/"
                                                "HomeInputs"
                                            },
                                            "minItems": 1,
                                            "maxItems": BATCH_MAX_ROWS,
                                        }
                                    },
                                    "required": ["rows"],
                                },
                            ]
                        },
                        "example": [EXAMPLE_HOME, {**EXAMPLE_HOME, "code_insee": "x"}],
                    },
                    "text/csv": {"schema": {"type": "string"}, "example": csv_text},
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "file": {
                                    "type": "string",
                                    "contentMediaType": "text/csv",
                                }
                            },
                            "required": ["file"],
                        }
                    },
                },
            },
            "responses": _responses(
                _ok(schema, "Un résultat par ligne, dans l'ordre.", cors=False),
                400,
                413,
                415,
                503,
            ),
        }
    }


def _communes_paths() -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the paths and schemas of the communes endpoints (webapp.api.communes)."""
    from webapp import maps
    from webapp.api import communes

    number = {"type": ["number", "null"]}
    text = {"type": ["string", "null"]}
    record = {
        "type": "object",
        "properties": {
            "code_insee": {"type": "string"},
            "nom_commune": text,
            "code_departement": text,
            "annee": {"type": ["integer", "null"]},
            "nombre_de_logements": {"type": ["integer", "null"]},
            "conso_total_mwh": number,
            "conso_moyenne_mwh": number,
            "densite": number,
            "altitude": number,
            "latitude": number,
            "longitude": number,
            "nombre_dpe": number,
            "part_passoires": number,
            "etiquette_mediane": {
                "type": ["string", "null"],
                "enum": [*rules.LABELS, None],
            },
        },
        "required": ["code_insee"],
    }
    schemas = {
        "CommuneRecord": record,
        "CommunesPage": {
            "type": "object",
            "properties": {
                "count": {"type": "integer"},
                "page": {"type": "integer"},
                "pages": {"type": "integer"},
                "par_page": {"type": "integer"},
                "filtres": {"type": "object"},
                "colonnes": {"type": "array", "items": {"type": "string"}},
                "resultats": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/CommuneRecord"},
                },
            },
            "required": ["count", "page", "pages", "resultats"],
        },
        "CommuneDetail": {
            "type": "object",
            "properties": {
                "code_insee": {"type": "string"},
                "nom_commune": {"type": "string"},
                "annees": {
                    "type": "array",
                    "items": {"$ref": "#/components/schemas/CommuneRecord"},
                },
                "moyenne_annuelle": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/CommuneRecord"},
                        {"type": "null"},
                    ]
                },
                "etiquettes_dpe": {
                    "type": ["object", "null"],
                    "additionalProperties": {"type": "integer"},
                },
            },
            "required": ["code_insee", "nom_commune", "annees"],
        },
    }

    def query(name, description, schema, **extra):
        return {
            "name": name,
            "in": "query",
            "required": False,
            "description": description,
            "schema": schema,
            **extra,
        }

    parameters = [
        query(
            "departement",
            "Code(s) de département, répétable ; « tous » pour tous (par défaut 74).",
            {"type": "array", "items": {"type": "string"}},
            style="form",
            explode=True,
        ),
        query(
            "annee",
            "Année des données Enedis (par défaut : moyenne).",
            {"type": "string"},
        ),
        query(
            "indicateur",
            "Indicateur de la carte.",
            {"type": "string", "enum": list(maps.METRICS)},
        ),
        query("densite_min", "Densité minimale (hab./km²).", {"type": "string"}),
        query("densite_max", "Densité maximale (hab./km²).", {"type": "string"}),
        query("altitude_min", "Altitude minimale (m).", {"type": "string"}),
        query("altitude_max", "Altitude maximale (m).", {"type": "string"}),
        query("commune", "Nom ou code INSEE d'une commune.", {"type": "string"}),
        query(
            "mode", "Mode de la carte.", {"type": "string", "enum": list(maps.MODES)}
        ),
        query(
            "tri",
            "Colonne de tri.",
            {"type": "string", "enum": list(maps.TABLE_COLUMNS)},
        ),
        query("ordre", "Ordre de tri.", {"type": "string", "enum": ["asc", "desc"]}),
        query("page", "Numéro de page (à partir de 1).", {"type": "string"}),
        query(
            "par_page",
            f"Lignes par page, 1 à {communes.MAX_PER_PAGE} "
            f"(par défaut {communes.DEFAULT_PER_PAGE}).",
            {"type": "string"},
        ),
    ]
    paths = {
        "/api/v1/communes": {
            "get": {
                "tags": ["Communes"],
                "summary": "Communes et leurs consommations",
                "description": "Les agrégats par commune et par année que montre la "
                "carte, filtrés comme la carte, par page.",
                "parameters": parameters,
                "responses": _responses(
                    _ok("CommunesPage", "Une page de communes."), 400, 503
                ),
            }
        },
        "/api/v1/communes/{code_insee}": {
            "get": {
                "tags": ["Communes"],
                "summary": "Une commune",
                "description": "Consommation par année, moyenne annuelle et "
                "répartition des étiquettes DPE d'une commune.",
                "parameters": [
                    {
                        "name": "code_insee",
                        "in": "path",
                        "required": True,
                        "description": "Code INSEE de la commune.",
                        "schema": {"type": "string"},
                        "example": "74010",
                    }
                ],
                "responses": _responses(_ok("CommuneDetail", "La commune."), 404, 503),
            }
        },
    }
    return paths, schemas


def build_spec(app) -> dict[str, Any]:
    """Return the OpenAPI 3.1 document of the API of `app`."""
    paths: dict[str, Any] = {
        "/api/v1/etiquette_dpe": _single(
            "Prédiction",
            "LabelPrediction",
            "Étiquette DPE probable d'un logement",
            "Étiquette A à G la plus probable, probabilité de chaque classe et "
            "probabilité d'être une passoire (F ou G).",
        ),
        "/api/v1/consommation": _single(
            "Prédiction",
            "ConsumptionPrediction",
            "Consommation et coût d'un logement",
            "Énergie primaire en kWh/m²/an et kWh/an avec l'intervalle à 80 %, "
            "émissions et coût annuel estimé.",
        ),
        "/api/v1/consommation_chauffage": _single(
            "Prédiction",
            "ConsumptionPrediction",
            "Alias de /api/v1/consommation",
            "Même réponse que /api/v1/consommation, conservé pour les clients de "
            "l'application d'origine.",
        ),
        "/api/v1/etiquette_dpe/batch": _batch(
            "Lots", "LabelBatch", "Étiquettes d'un lot de logements"
        ),
        "/api/v1/consommation/batch": _batch(
            "Lots", "ConsumptionBatch", "Consommations d'un lot de logements"
        ),
        "/api/v1/model": {
            "get": {
                "tags": ["Modèle"],
                "summary": "Fiche du modèle",
                "description": "Version, métriques, origine et dates des données.",
                "responses": _responses(_ok("ModelCard", "La fiche du modèle."), 503),
            }
        },
        "/api/v1/health": {
            "get": {
                "tags": ["Service"],
                "summary": "État du service",
                "description": "Répond tant que l'application tourne, avec les "
                "versions des données et des modèles.",
                "responses": _responses(_ok("Health", "Le service répond.")),
            }
        },
        "/api/v1/ready": {
            "get": {
                "tags": ["Service"],
                "summary": "Disponibilité",
                "description": "200 quand les données et les modèles sont chargés, "
                "503 sinon.",
                "responses": {
                    "200": _ok("Ready", "Prêt."),
                    "503": {
                        "description": "Pas encore prêt.",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/Ready"}
                            }
                        },
                    },
                    "429": _error(429),
                    "500": _error(500),
                },
            }
        },
        "/api/v1/openapi.json": {
            "get": {
                "tags": ["Service"],
                "summary": "Ce document OpenAPI 3.1",
                "responses": _responses(
                    {
                        "description": "Le document OpenAPI.",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                ),
            }
        },
    }
    communes_paths, communes_schemas = _communes_paths()
    paths.update(communes_paths)
    registered = {_plain_rule(rule.rule) for rule in app.url_map.iter_rules()}
    paths = {
        path: item for path, item in paths.items() if _flask_rule(path) in registered
    }
    schemas = _schemas()
    schemas.update(communes_schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "API Atlas Énergie 74",
            "version": webapp.__version__,
            "summary": "Étiquette DPE, consommation et données des communes de "
            "Haute-Savoie.",
            "description": (
                "API JSON ouverte. Erreurs au format "
                '{"error": {"code", "message", "fields"}} ; limite de requêtes par '
                "adresse IP (429 avec Retry-After) ; CORS ouvert en GET."
            ),
            "license": {
                "name": "Licence Ouverte 2.0 (données)",
                "identifier": "etalab-2.0",
            },
        },
        "servers": [{"url": "/"}],
        "tags": [
            {"name": "Prédiction"},
            {"name": "Lots"},
            {"name": "Modèle"},
            {"name": "Communes"},
            {"name": "Service"},
        ],
        "paths": paths,
        "components": {"schemas": schemas},
    }


def _flask_rule(path: str) -> str:
    """Return the Flask rule of an OpenAPI path ('{code}' -> '<code>')."""
    return path.replace("{", "<").replace("}", ">")


def _plain_rule(rule: str) -> str:
    """Return a Flask rule without converters ('<string:code>' -> '<code>')."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"<\1>", rule)


def get_spec() -> dict[str, Any]:
    """Return the document of the current app (built once per app)."""
    app = current_app._get_current_object()
    spec = app.extensions.get("openapi")
    if spec is None:
        spec = build_spec(app)
        app.extensions["openapi"] = spec
    return copy.deepcopy(spec)


@bp.get("/openapi.json")
def openapi_json():
    """Serve the OpenAPI 3.1 document of this API."""
    spec = get_spec()
    spec["servers"] = [{"url": request.host_url.rstrip("/")}]
    return jsonify(spec)
