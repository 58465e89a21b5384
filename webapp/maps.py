"""The consumption map: filters, per-commune aggregates, table, CSV and figures.

Everything here is plain pandas and Plotly: the views parse the query string with
`parse_filters`, select rows with `map_frame` / `table_rows`, and render the figures
built by the pure builders (`scatter_map`, `density_map`, `label_chart`).
"""

from __future__ import annotations

import base64
import csv
import io
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from webapp import rules
from webapp import schema
from webapp.formatting import nombre
from webapp.formatting import pourcent
from webapp.store import Snapshot
from webapp.store import aggregate

logger = logging.getLogger(__name__)

# --------------------------------------------------------------------------- options

#: Years of the Enedis file offered when the data holds none.
DEFAULT_YEARS = tuple(range(2018, 2025))

#: The département the map opens on.
DEFAULT_DEPARTEMENT = "74"

#: Metrics of the map: key -> (French label, unit shown on the colour bar).
METRICS: dict[str, tuple[str, str]] = {
    "conso_total_mwh": ("Consommation totale", "MWh"),
    "conso_moyenne_mwh": ("Consommation moyenne par logement", "MWh"),
    "part_passoires": ("Part de passoires (F, G)", "%"),
    "etiquette_mediane": ("Étiquette DPE médiane", ""),
}
DEFAULT_METRIC = "conso_total_mwh"

#: Metrics computed from the DPE, only available where DPE data exist.
DPE_METRICS = ("part_passoires", "etiquette_mediane")

#: Map modes: key -> French label.
MODES = {"points": "Points", "chaleur": "Carte de chaleur"}

#: Columns of the communes table and of its CSV: key -> French header.
TABLE_COLUMNS: dict[str, str] = {
    "code_insee": "Code INSEE",
    "nom_commune": "Commune",
    "annee": "Année",
    "nombre_de_logements": "Logements",
    "densite": "Densité (hab./km²)",
    "altitude": "Altitude (m)",
    "conso_total_mwh": "Consommation totale (MWh)",
    "conso_moyenne_mwh": "MWh par logement",
    "part_passoires": "Part de passoires (F, G)",
}
#: Decimals of the numeric table columns (French formatting).
TABLE_DECIMALS = {
    "nombre_de_logements": 0,
    "densite": 0,
    "altitude": 0,
    "conso_total_mwh": 0,
    "conso_moyenne_mwh": 2,
}
DEFAULT_SORT = "conso_total_mwh"
PAGE_SIZE = 25

#: Stable ids of the figure divs (the click script and the tests find them).
MAP_DIV_ID = "carte-communes"
LABEL_CHART_DIV_ID = "graphique-etiquettes"

#: Above this many points, coordinates are rounded to 2 decimals (about 1 km).
FINE_COORDINATES_MAX_POINTS = 5000

#: Marker area of the largest commune, in pixels of diameter.
MAX_MARKER_PX = 34
MIN_MARKER_PX = 4

#: Colour of communes without a value for the chosen metric.
UNAVAILABLE_COLOR = "#9aa6b3"

#: Colours of the address points by geolocation precision.
PRECISION_STYLE = {
    "adresse": ("adresse exacte (DPE)", "#0b5cad"),
    "rue": ("centre de la rue (DPE)", "#d9822b"),
    "commune": ("centre de la commune", "#6b4fa0"),
}

#: Centre and zoom of the whole of metropolitan France.
FRANCE_VIEW = {"lat": 46.6, "lon": 2.4, "zoom": 4.6}
#: Zoom on a chosen commune.
COMMUNE_ZOOM = 13

#: Plotly's French interface strings (modebar), passed with the figure config.
PLOTLY_FR = {
    "dictionary": {
        "Download plot as a PNG": "Télécharger l'image (PNG)",
        "Download plot": "Télécharger l'image",
        "Zoom in": "Zoom avant",
        "Zoom out": "Zoom arrière",
        "Reset view": "Réinitialiser la vue",
        "Pan": "Déplacer",
        "Produced with Plotly.js": "Produit avec Plotly.js",
        "Taking snapshot - this may take a few seconds": (
            "Capture en cours, cela peut prendre quelques secondes"
        ),
        "Snapshot succeeded": "Capture réussie",
        "Sorry, there was a problem downloading your snapshot!": (
            "Désolé, le téléchargement de la capture a échoué."
        ),
        "Zoom": "Zoom",
        "Autoscale": "Échelle automatique",
        "Reset axes": "Réinitialiser les axes",
        "Toggle Spike Lines": "Afficher les lignes de repère",
        "Show closest data on hover": "Valeur la plus proche au survol",
        "Compare data on hover": "Comparer au survol",
    },
    "format": {
        "decimal": ",",
        "thousands": "\u202f",
        "days": ["dim.", "lun.", "mar.", "mer.", "jeu.", "ven.", "sam."],
    },
}


# --------------------------------------------------------------------------- filters


class FilterError(ValueError):
    """Invalid map filters, with a French message per field."""

    def __init__(self, fields: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in fields.items()))
        self.fields = fields


@dataclass(frozen=True)
class MapFilters:
    """The whole state of the map page, as parsed from a query string."""

    departements: tuple[str, ...] = (DEFAULT_DEPARTEMENT,)
    annee: int | None = None
    indicateur: str = DEFAULT_METRIC
    densite_min: float | None = None
    densite_max: float | None = None
    altitude_min: float | None = None
    altitude_max: float | None = None
    commune: str | None = None
    mode: str = "points"
    tri: str = DEFAULT_SORT
    ordre: str = "desc"
    page: int = 1

    def query(self, **changes: Any) -> list[tuple[str, str]]:
        """Return the query-string pairs of this state (defaults left out)."""
        state = replace(self, **changes) if changes else self
        pairs: list[tuple[str, str]] = []
        if not state.departements:
            pairs.append(("departement", "tous"))
        elif state.departements != (DEFAULT_DEPARTEMENT,):
            pairs.extend(("departement", code) for code in state.departements)
        if state.annee is not None:
            pairs.append(("annee", str(state.annee)))
        if state.indicateur != DEFAULT_METRIC:
            pairs.append(("indicateur", state.indicateur))
        for name in ("densite_min", "densite_max", "altitude_min", "altitude_max"):
            value = getattr(state, name)
            if value is not None:
                pairs.append((name, _plain_number(value)))
        if state.commune:
            pairs.append(("commune", state.commune))
        if state.mode != "points":
            pairs.append(("mode", state.mode))
        if state.tri != DEFAULT_SORT:
            pairs.append(("tri", state.tri))
        if state.ordre != "desc":
            pairs.append(("ordre", state.ordre))
        if state.page != 1:
            pairs.append(("page", str(state.page)))
        return pairs

    def to_dict(self) -> dict[str, Any]:
        """Return the state as JSON-ready values (for the API)."""
        return {
            "departement": list(self.departements) or "tous",
            "annee": self.annee,
            "indicateur": self.indicateur,
            "densite_min": self.densite_min,
            "densite_max": self.densite_max,
            "altitude_min": self.altitude_min,
            "altitude_max": self.altitude_max,
            "commune": self.commune,
            "mode": self.mode,
            "tri": self.tri,
            "ordre": self.ordre,
            "page": self.page,
        }


def _plain_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _getlist(args: Mapping, name: str) -> list[str]:
    if hasattr(args, "getlist"):
        return [str(v) for v in args.getlist(name)]
    value = args.get(name)
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]


def _parse_number(text: str | None) -> float | None:
    """Parse '1 200,5' or '1200.5'; raise ValueError on anything else."""
    if text is None or not str(text).strip():
        return None
    cleaned = re.sub(r"[\s\u202f\u00a0]", "", str(text)).replace(",", ".")
    if not re.fullmatch(r"[-+]?\d+(\.\d+)?", cleaned):
        raise ValueError(text)
    return float(cleaned)


def _parse_range(
    args: Mapping,
    prefix: str,
    unit: str,
    bounds: tuple[float, float],
    errors: dict[str, str],
) -> tuple[float | None, float | None]:
    values: dict[str, float | None] = {}
    for side in ("min", "max"):
        name = f"{prefix}_{side}"
        try:
            value = _parse_number(args.get(name))
        except ValueError:
            errors[name] = f"Saisissez un nombre (en {unit}), par exemple 500."
            values[side] = None
            continue
        if value is not None and not bounds[0] <= value <= bounds[1]:
            errors[name] = (
                f"Valeur hors limites : entre {nombre(bounds[0])} "
                f"et {nombre(bounds[1])} {unit}."
            )
            value = None
        values[side] = value
    low, high = values["min"], values["max"]
    if low is not None and high is not None and low > high:
        errors[f"{prefix}_max"] = (
            f"Le maximum ({nombre(high)}) est inférieur au minimum ({nombre(low)})."
        )
    return low, high


def parse_filters(args: Mapping, data: MapData) -> MapFilters:
    """Return the filters of a query string, or raise FilterError (French messages).

    :param args: the query string (a werkzeug MultiDict or a plain mapping).
    :param data: the per-load map data, which knows the valid codes and years.
    :raise FilterError: one French message per invalid field.
    """
    errors: dict[str, str] = {}

    departements = _parse_departements(_getlist(args, "departement"), data, errors)
    annee = _parse_year(args.get("annee"), data, errors)
    indicateur = str(args.get("indicateur") or DEFAULT_METRIC)
    if indicateur not in METRICS:
        errors["indicateur"] = "Indicateur inconnu : choisissez " + ", ".join(
            label for label, _ in METRICS.values()
        )
        indicateur = DEFAULT_METRIC
    densite = _parse_range(args, "densite", "hab./km²", (0, 100_000), errors)
    altitude = _parse_range(args, "altitude", "m", (-500, 5000), errors)
    commune = _parse_commune(args.get("commune"), data, errors)
    mode = str(args.get("mode") or "points")
    if mode not in MODES:
        errors["mode"] = "Mode inconnu : choisissez « Points » ou « Carte de chaleur »."
    tri = str(args.get("tri") or DEFAULT_SORT)
    if tri not in TABLE_COLUMNS:
        errors["tri"] = "Colonne de tri inconnue."
    ordre = str(args.get("ordre") or "desc")
    if ordre not in ("asc", "desc"):
        errors["ordre"] = "Ordre de tri inconnu : « asc » ou « desc »."
    page = _parse_page(args.get("page"), errors)

    if errors:
        raise FilterError(errors)
    return MapFilters(
        departements=departements,
        annee=annee,
        indicateur=indicateur,
        densite_min=densite[0],
        densite_max=densite[1],
        altitude_min=altitude[0],
        altitude_max=altitude[1],
        commune=commune,
        mode=mode,
        tri=tri,
        ordre=ordre,
        page=page,
    )


def _parse_departements(
    values: list[str], data: MapData, errors: dict[str, str]
) -> tuple[str, ...]:
    values = [v.strip().upper() for v in values if v.strip()]
    if not values:
        return data.default_departements
    if "TOUS" in values:
        return ()
    codes = []
    for value in values:
        code = value.zfill(2) if (value.isascii() and value.isdigit()) else value
        if code not in data.departements:
            errors["departement"] = f"Département inconnu : {value}."
            continue
        if code not in codes:
            codes.append(code)
    return tuple(sorted(codes))


def _parse_year(value: Any, data: MapData, errors: dict[str, str]) -> int | None:
    text = str(value or "").strip()
    if text in ("", "toutes"):
        return None
    years = data.years
    span = f"{years[0]} à {years[-1]}" if years else "aucune"
    if not (text.isascii() and text.isdigit()) or int(text) not in years:
        errors["annee"] = f"Année inconnue : {text} (années disponibles : {span})."
        return None
    return int(text)


def _parse_commune(value: Any, data: MapData, errors: dict[str, str]) -> str | None:
    text = str(value or "").strip()
    if not text:
        return None
    code = data.find_commune(text)
    if code is None:
        matches = data.suggest(text, limit=2)
        if len(matches) > 1:
            errors["commune"] = (
                f"Plusieurs communes correspondent à « {text} » : "
                "choisissez-en une dans la liste."
            )
        else:
            errors["commune"] = f"Commune inconnue : « {text} »."
    return code


def _parse_page(value: Any, errors: dict[str, str]) -> int:
    text = str(value or "1").strip()
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        errors["page"] = "Numéro de page invalide."
        return 1
    return int(text)


# --------------------------------------------------------------------------- data


@dataclass
class MapData:
    """Per-commune aggregates of one data load, ready to filter per request."""

    #: One row per commune and year (all columns of the table and the map).
    rows: pd.DataFrame
    #: One row per commune: mean yearly values over the years of the data.
    all_years: pd.DataFrame
    #: Per commune: DPE count per label A..G (communes with DPE only).
    label_counts: pd.DataFrame
    #: code -> name of the départements present in the data.
    departements: dict[str, str]
    years: tuple[int, ...]
    #: Communes of the reference table: code -> name, and folded names for search.
    commune_names: pd.Series
    commune_folded: pd.Series
    default_departements: tuple[str, ...] = (DEFAULT_DEPARTEMENT,)
    #: Year rows indexed for fast selection.
    by_year: dict[int, pd.DataFrame] = field(default_factory=dict)

    def find_commune(self, text: str) -> str | None:
        """Return the INSEE code of 'Annecy (74010)', '74010' or an exact name."""
        match = re.search(r"\(([0-9][0-9AB][0-9]{3})\)\s*$", text)
        candidate = (match.group(1) if match else text.strip()).upper()
        if candidate in self.commune_names.index:
            return candidate
        folded = schema.fold(text)
        exact = self.commune_folded[self.commune_folded == folded]
        if len(exact) == 1:
            return str(exact.index[0])
        return None

    def suggest(self, text: str, limit: int = 10) -> list[tuple[str, str]]:
        """Return (code, name) of the communes whose name starts with or holds text."""
        folded = schema.fold(text)
        if not folded:
            return []
        names = self.commune_folded
        starts = names[names.str.startswith(folded)]
        if len(starts) < limit:
            contains = names[names.str.contains(folded, regex=False)]
            starts = pd.concat([starts, contains[~contains.index.isin(starts.index)]])
        if text.strip().isascii() and text.strip().isdigit():
            by_code = names[names.index.str.startswith(text.strip())]
            starts = pd.concat([by_code, starts[~starts.index.isin(by_code.index)]])
        codes = list(starts.index[:limit])
        return [(code, str(self.commune_names[code])) for code in codes]

    def commune_row(self, code: str, annee: int | None) -> pd.Series | None:
        """Return the map row of one commune for a year (or all years)."""
        frame = self.all_years if annee is None else self.by_year.get(annee)
        if frame is None or code not in frame.index:
            return None
        return frame.loc[code]


def _commune_reference(communes: pd.DataFrame) -> pd.DataFrame:
    """Name, département, centre, altitude and density of every commune."""
    ref = communes.set_index("code_insee")
    altitude = ref.get("altitude_moyenne")
    if altitude is None:
        altitude = pd.Series(np.nan, index=ref.index)
    if {"altitude_minimale", "altitude_maximale"} <= set(ref.columns):
        altitude = altitude.fillna(
            (ref["altitude_minimale"] + ref["altitude_maximale"]) / 2
        )
    return pd.DataFrame(
        {
            "nom_commune": ref["nom_standard"].astype("string"),
            "dep_code": ref["dep_code"].astype("string"),
            "dep_nom": ref.get("dep_nom", ref["dep_code"]).astype("string"),
            "latitude": ref["latitude_centre"].astype("float64"),
            "longitude": ref["longitude_centre"].astype("float64"),
            "altitude": altitude.astype("float64"),
            "densite": ref.get("densite", pd.Series(np.nan, index=ref.index)).astype(
                "float64"
            ),
        }
    )


def dpe_metrics(dpe: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return per commune the DPE count, passoire share, median label, label counts."""
    labels = dpe["etiquette_dpe"].astype("string")
    codes = dpe["code_insee_ban"].astype("string")
    known = labels.isin(rules.LABELS).fillna(False) & codes.notna()
    labels, codes = labels[known], codes[known]
    counts = pd.crosstab(codes, labels).reindex(
        columns=list(rules.LABELS), fill_value=0
    )
    counts.index.name = "code_insee"
    counts.columns.name = None

    totals = counts.sum(axis=1)
    passoires = counts[list(rules.PASSOIRE_LABELS)].sum(axis=1)
    # Lower median: the label of the ((n - 1) // 2)-th DPE in A..G order.
    cumulative = counts.cumsum(axis=1).to_numpy()
    rank = ((totals.to_numpy() - 1) // 2)[:, None]
    median_index = (cumulative <= rank).sum(axis=1)
    metrics = pd.DataFrame(
        {
            "nombre_dpe": totals.astype("int64"),
            "part_passoires": passoires / totals,
            "etiquette_mediane_rang": median_index.astype("float64"),
        },
        index=counts.index,
    )
    return metrics, counts


def build_map_data(
    enedis_communes: pd.DataFrame, communes: pd.DataFrame, dpe: pd.DataFrame
) -> MapData:
    """Join Enedis per commune and year to the communes table and the DPE metrics."""
    reference = _commune_reference(communes)
    metrics, counts = dpe_metrics(dpe)

    frame = enedis_communes.groupby(
        ["code_commune", "annee"], observed=True, as_index=False
    )[["nombre_de_logements", "conso_total_mwh"]].sum()
    frame = frame.rename(columns={"code_commune": "code_insee"})
    unknown = ~frame["code_insee"].isin(reference.index)
    if unknown.any():
        logger.info(
            "map: %d commune-year rows without a commune in the reference dropped",
            int(unknown.sum()),
        )
    frame = frame[~unknown]
    frame = frame.join(reference, on="code_insee").join(metrics, on="code_insee")
    frame["conso_moyenne_mwh"] = frame["conso_total_mwh"] / frame["nombre_de_logements"]
    frame["annee"] = frame["annee"].astype("int64")
    frame["libelle"] = point_labels(frame).astype(object)
    frame["nom_tri"] = frame["nom_commune"].map(schema.fold).astype(object)
    frame = frame.sort_values(["code_insee", "annee"]).reset_index(drop=True)

    yearly = frame.groupby("code_insee", sort=True)
    all_years = yearly[["nombre_de_logements", "conso_total_mwh"]].mean()
    all_years["conso_moyenne_mwh"] = (
        all_years["conso_total_mwh"] / all_years["nombre_de_logements"]
    )
    all_years["annee_min"] = yearly["annee"].min()
    all_years["annee_max"] = yearly["annee"].max()
    all_years = all_years.join(reference).join(metrics)
    all_years["annee"] = pd.NA
    all_years.index.name = "code_insee"
    all_years = (
        all_years.reset_index().set_index("code_insee", drop=False).rename_axis(None)
    )
    all_years["libelle"] = point_labels(all_years).astype(object)

    by_year = {
        # Indexed by code (unnamed, so that "code_insee" stays a plain column).
        int(year): group.set_index("code_insee", drop=False).rename_axis(None)
        for year, group in frame.groupby("annee")
    }
    years = tuple(sorted(by_year)) or DEFAULT_YEARS
    present = reference.loc[reference.index.isin(frame["code_insee"])]
    departements = (
        present.drop_duplicates("dep_code").set_index("dep_code")["dep_nom"].to_dict()
    )
    departements = dict(sorted(departements.items()))
    default = (DEFAULT_DEPARTEMENT,) if DEFAULT_DEPARTEMENT in departements else tuple()
    return MapData(
        rows=frame,
        all_years=all_years,
        label_counts=counts,
        departements=departements,
        years=years,
        commune_names=reference["nom_commune"],
        commune_folded=reference["nom_commune"].map(schema.fold).astype("string"),
        default_departements=default,
        by_year=by_year,
    )


@aggregate("map")
def map_aggregate(snapshot: Snapshot) -> MapData:
    """Compute the map data once per data load."""
    return build_map_data(snapshot.enedis_communes, snapshot.communes, snapshot.dpe)


def _apply_filters(frame: pd.DataFrame, filters: MapFilters) -> pd.DataFrame:
    mask = np.ones(len(frame), dtype=bool)
    if filters.departements:
        mask &= frame["dep_code"].isin(filters.departements).to_numpy(dtype=bool)
    for column, low, high in (
        ("densite", filters.densite_min, filters.densite_max),
        ("altitude", filters.altitude_min, filters.altitude_max),
    ):
        values = frame[column].to_numpy(dtype="float64")
        if low is not None:
            mask &= values >= low
        if high is not None:
            mask &= values <= high
    return frame[mask]


def map_frame(data: MapData, filters: MapFilters) -> pd.DataFrame:
    """Return one row per commune of the map for the filters (year or all years)."""
    frame = data.all_years if filters.annee is None else data.by_year[filters.annee]
    return _apply_filters(frame, filters)


def table_rows(data: MapData, filters: MapFilters) -> pd.DataFrame:
    """Return every filtered commune-year row, sorted as asked (missing last)."""
    frame = data.rows if filters.annee is None else data.by_year[filters.annee]
    frame = _apply_filters(frame, filters)
    # Names sort without accents (É with E); the frames are ordered by code then
    # year, and a stable sort keeps that order among ties.
    key = "nom_tri" if filters.tri == "nom_commune" else filters.tri
    return frame.sort_values(
        key,
        ascending=filters.ordre == "asc",
        na_position="last",
        kind="stable",
    )[list(TABLE_COLUMNS)]


@dataclass(frozen=True)
class TablePage:
    """One page of the communes table."""

    rows: pd.DataFrame
    count: int
    page: int
    pages: int


def table_page(rows: pd.DataFrame, page: int, size: int = PAGE_SIZE) -> TablePage:
    """Return the page `page` (clamped to the last one) of the sorted rows."""
    count = len(rows)
    pages = max(1, math.ceil(count / size))
    page = min(max(1, page), pages)
    start = (page - 1) * size
    return TablePage(rows.iloc[start : start + size], count, page, pages)


def format_cell(column: str, value: Any) -> str:
    """Return the French display text of one table cell."""
    if column == "part_passoires":
        return pourcent(value)
    if column in TABLE_DECIMALS:
        return nombre(value, TABLE_DECIMALS[column])
    if (
        value is None
        or value is pd.NA
        or (isinstance(value, float) and np.isnan(value))
    ):
        return "–"
    return str(value)


def display_rows(rows: pd.DataFrame) -> list[list[str]]:
    """Return the table rows as French display strings, in TABLE_COLUMNS order."""
    columns = list(TABLE_COLUMNS)
    return [
        [format_cell(column, value) for column, value in zip(columns, row, strict=True)]
        for row in rows[columns].itertuples(index=False, name=None)
    ]


def _csv_number(value: Any, decimals: int) -> str:
    if value is None or value is pd.NA or np.isnan(value):
        return ""
    return f"{float(value):.{decimals}f}".replace(".", ",")


def csv_bytes(rows: pd.DataFrame) -> bytes:
    """Return the rows as a French spreadsheet CSV: UTF-8 BOM, ';', decimal comma."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(TABLE_COLUMNS.values())
    for row in rows[list(TABLE_COLUMNS)].itertuples(index=False):
        writer.writerow(
            [
                row.code_insee,
                row.nom_commune,
                row.annee,
                _csv_number(row.nombre_de_logements, 0),
                _csv_number(row.densite, 0),
                _csv_number(row.altitude, 0),
                _csv_number(row.conso_total_mwh, 0),
                _csv_number(row.conso_moyenne_mwh, 2),
                _csv_number(row.part_passoires * 100, 1),
            ]
        )
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def csv_filename(filters: MapFilters) -> str:
    """Return a descriptive file name for the CSV export."""
    where = "-".join(filters.departements) if filters.departements else "france"
    when = str(filters.annee) if filters.annee else "toutes-annees"
    return f"communes-consommation-{where}-{when}.csv"


# --------------------------------------------------------------------------- summary


def describe(frame: pd.DataFrame, filters: MapFilters, data: MapData) -> str:
    """Return a French sentence summarising what the map shows (its aria-label)."""
    if not filters.departements:
        where = "toute la France"
    else:
        names = [f"{data.departements.get(c, c)} ({c})" for c in filters.departements]
        where = ", ".join(names)
    when = (
        f"en {filters.annee}"
        if filters.annee
        else "moyenne annuelle de toutes les années disponibles"
    )
    label, unit = METRICS[filters.indicateur]
    if filters.mode == "chaleur":
        how = "carte de chaleur pondérée par la consommation totale"
    else:
        how = f"couleur : {label.lower()}, taille : nombre de logements"
    text = (
        f"Carte de {nombre(len(frame))} communes ({where}), {when} ; {how}. "
        "Le tableau des communes, sous la carte, donne les mêmes valeurs."
    )
    if filters.commune:
        name = data.commune_names.get(filters.commune, filters.commune)
        text += f" Commune choisie : {name} ({filters.commune}), adresses affichées."
    return text


# --------------------------------------------------------------------------- figures


def _round_sig(values: np.ndarray, digits: int = 3) -> np.ndarray:
    """Round to `digits` significant digits (keeps the JSON short)."""
    values = np.asarray(values, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        magnitude = np.floor(np.log10(np.abs(values)))
    magnitude = np.where(np.isfinite(magnitude), magnitude, 0)
    scale = 10.0 ** (digits - 1 - magnitude)
    return np.round(values * scale) / scale


def _rounded(values: np.ndarray, decimals: int | None = None) -> np.ndarray:
    """Return values as floats rounded for display (NaN kept)."""
    array = np.asarray(values, dtype="float64")
    if decimals is not None:
        array = np.round(array, decimals)
    return array


def _plain(array: np.ndarray) -> list:
    """Return an array as a JSON-ready list: whole numbers without '.0', NaN as None."""
    if array.dtype.kind not in "f":
        return array.tolist()
    values = np.asarray(array, dtype="float64")
    missing = ~np.isfinite(values)
    whole = ~missing & (values == np.round(values))
    if whole.all():
        return values.astype("int64").tolist()
    if not (whole.any() or missing.any()):
        return values.tolist()
    # Mixed: each whole value written as an integer (138, not 138.0).
    boxed = values.astype(object)
    boxed[whole] = values[whole].astype("int64").tolist()
    boxed[missing] = None
    return boxed.tolist()


def typed_array(values: np.ndarray, dtype: str) -> dict[str, str]:
    """Return values as Plotly's base64 typed-array spec (e.g. dtype 'f4', 'u2').

    Smaller than decimal text before compression, usually larger after it: each
    use is chosen by the measures of `bench/bench_map.py`.
    """
    array = np.ascontiguousarray(values, dtype=np.dtype(dtype).newbyteorder("<"))
    return {"dtype": dtype, "bdata": base64.b64encode(array.tobytes()).decode()}


def compact_arrays(node: Any) -> Any:
    """Replace the numpy arrays of a figure dict by short plain lists.

    Plotly would write them as base64 typed arrays; for rounded values the decimal
    text is about as long raw and clearly smaller once gzipped (measured in
    `bench/bench_map.py`), and building the figure from numpy arrays skips
    Plotly's slow per-element validation of Python lists.
    """
    if isinstance(node, dict):
        return {key: compact_arrays(value) for key, value in node.items()}
    if isinstance(node, list | tuple):
        if node and not isinstance(node[0], _CONTAINERS):
            # A flat list of scalars (hover rows, labels): only NaN needs care.
            return [_scalar(value) for value in node]
        return [compact_arrays(value) for value in node]
    if isinstance(node, np.ndarray):
        if node.ndim == 2 and node.dtype.kind in "fiu":
            columns = [_plain(node[:, j]) for j in range(node.shape[1])]
            # Tuples: written as JSON arrays, and built without a Python loop.
            return list(zip(*columns, strict=True))
        if node.ndim == 2:
            return [[compact_arrays(v) for v in row] for row in node.tolist()]
        return _plain(node)
    return _scalar(node)


_CONTAINERS = (dict, list, tuple, np.ndarray)


def _scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def point_labels(frame: pd.DataFrame) -> pd.Series:
    """Return 'Annecy (74010)' for each commune (the text of its map point)."""
    return (
        frame["nom_commune"].astype(str) + " (" + frame["code_insee"].astype(str) + ")"
    )


def _point_labels(frame: pd.DataFrame) -> np.ndarray:
    labels = frame["libelle"] if "libelle" in frame else point_labels(frame)
    return labels.to_numpy(dtype=str)


def _view(frame: pd.DataFrame, commune: pd.Series | None) -> dict[str, float]:
    """Return the centre and zoom that fit the points (or the chosen commune)."""
    if commune is not None and pd.notna(commune["latitude"]):
        return {
            "lat": float(commune["latitude"]),
            "lon": float(commune["longitude"]),
            "zoom": COMMUNE_ZOOM,
        }
    lat = frame["latitude"].dropna()
    lon = frame["longitude"].dropna()
    if lat.empty:
        return dict(FRANCE_VIEW)
    lat_span = max(float(lat.max() - lat.min()), 0.05)
    lon_span = max(float(lon.max() - lon.min()), 0.05)
    # Web-mercator zoom that fits the larger span in a ~700 px wide map.
    zoom = min(
        math.log2(360 * 2.6 / lon_span),
        math.log2(180 * 2.2 / lat_span),
    )
    return {
        "lat": round(float((lat.max() + lat.min()) / 2), 4),
        "lon": round(float((lon.max() + lon.min()) / 2), 4),
        "zoom": round(max(2.0, min(zoom, 11.0)) - 0.8, 2),
    }


def _layout(view: dict[str, float], height: int, **extra: Any) -> dict[str, Any]:
    """Return the layout of a map figure (a plain dict, validated once)."""
    return {
        "map": {
            "style": "open-street-map",
            "center": {"lat": view["lat"], "lon": view["lon"]},
            "zoom": view["zoom"],
        },
        "height": height,
        "margin": {"l": 0, "r": 0, "t": 0, "b": 0},
        "separators": ",\u202f",
        "legend": {
            "orientation": "h",
            "yanchor": "bottom",
            "y": 0.01,
            "xanchor": "left",
            "x": 0.01,
            "bgcolor": "rgba(255,255,255,0.85)",
        },
        # An explicit border colour: plotly would derive it from the marker colour,
        # a number on a colour axis, and warn.
        "hoverlabel": {
            "bgcolor": "white",
            "bordercolor": "#1d2733",
            "font": {"size": 13, "color": "#1d2733"},
        },
        # No default template: nothing of it shows on a map, and copying it into
        # every figure is most of Plotly's build time.
        "template": "none",
        **extra,
    }


def _colour_settings(metric: str, values: np.ndarray) -> dict[str, Any]:
    """Return the coloraxis of a metric: scale, bounds and titled colour bar."""
    label, unit = METRICS[metric]
    title = f"{label} ({unit})" if unit else label
    colorbar: dict[str, Any] = {
        "title": {"text": title.replace(" par ", "<br>par ", 1), "side": "right"},
        "thickness": 14,
        "len": 0.8,
    }
    if metric == "etiquette_mediane":
        colours = [rules.LABEL_COLORS[label] for label in rules.LABELS]
        steps = len(colours)
        scale = []
        for i, colour in enumerate(colours):
            scale += [[i / steps, colour], [(i + 1) / steps, colour]]
        colorbar.update(tickvals=list(range(steps)), ticktext=list(rules.LABELS))
        return {
            "colorscale": scale,
            "cmin": -0.5,
            "cmax": steps - 0.5,
            "colorbar": colorbar,
        }
    if metric == "part_passoires":
        colorbar.update(tickformat=".0%")
        return {"colorscale": "YlOrRd", "cmin": 0, "cmax": 1, "colorbar": colorbar}
    finite = values[np.isfinite(values)]
    high = float(np.quantile(finite, 0.98)) if finite.size else 1.0
    return {
        "colorscale": "Viridis",
        "cmin": 0,
        "cmax": float(_round_sig(np.array([high]), 2)[0]) or 1.0,
        "colorbar": colorbar,
    }


def _metric_values(frame: pd.DataFrame, metric: str) -> np.ndarray:
    column = "etiquette_mediane_rang" if metric == "etiquette_mediane" else metric
    return frame[column].to_numpy(dtype="float64")


#: Hover fields of a commune point: column, French label, d3 format, unit.
HOVER_FIELDS = (
    ("conso_total_mwh", "Consommation totale", ",.0f", " MWh"),
    ("conso_moyenne_mwh", "Moyenne par logement", ",.2f", " MWh"),
    ("altitude", "Altitude moyenne", ",.0f", " m"),
    ("densite", "Densité", ",.0f", " hab./km²"),
)
#: Columns of `HOVER_FIELDS`.
HOVER_COLUMNS = frozenset(column for column, *_ in HOVER_FIELDS)

#: Hover rounding of the large (national) views, which keeps their fragment under
#: its transferred-size goal (see `_hover_values`): altitude to 10 m, density and
#: mean per dwelling to 2 significant digits (8 258 hab./km² reads 8 300, 4,73 MWh
#: reads 4,7), total to 3. The table, the CSV and the commune detail keep the
#: unrounded values. Formats that differ from `HOVER_FIELDS` there:
LARGE_VIEW_FORMATS = {"conso_moyenne_mwh": ",.2~r"}


def _hover_fields(metric: str) -> list[tuple[str, str, str, str]]:
    """Fields read from the data: all but the coloured one (in marker.color)."""
    return [field for field in HOVER_FIELDS if field[0] != metric]


def _hover_template(
    metric: str,
    year_text: str,
    with_dpe: bool,
    large: bool = False,
    in_hovertext: str | None = None,
) -> str:
    """Hover text; the coloured metric reads marker.color, dwellings marker.size.

    The field `in_hovertext` (if any) reads the numbers of `hovertext`, the others
    `customdata` in `_hover_fields` order.
    """
    lines = ["<b>%{text}</b>", year_text, "Logements : %{marker.size:,.0f}"]
    fields = [f for f in _hover_fields(metric) if f[0] != in_hovertext]
    index = {field[0]: i for i, field in enumerate(fields)}
    for column, label, fmt, unit in HOVER_FIELDS:
        if large:
            fmt = LARGE_VIEW_FORMATS.get(column, fmt)
        if column == metric:
            lines.append(f"{label} : %{{marker.color:{fmt}}}{unit}")
        elif column == in_hovertext:
            lines.append(f"{label} : %{{hovertext:{fmt}}}{unit}")
        elif column in index:
            lines.append(f"{label} : %{{customdata[{index[column]}]:{fmt}}}{unit}")
    if with_dpe:
        n = len(fields)
        lines.append(f"Part de passoires (F, G) : %{{customdata[{n}]:.1f}}\u00a0%")
        lines.append("Étiquette médiane : %{hovertext}")
    else:
        lines.append("Données DPE indisponibles")
    return "<br>".join(lines) + "<extra></extra>"


def _hover_values(frame: pd.DataFrame, column: str, large: bool) -> np.ndarray:
    """Return one hover column of `HOVER_FIELDS`, rounded for display."""
    values = frame[column].to_numpy(dtype="float64")
    if column == "conso_moyenne_mwh":
        return _round_sig(values, 2) if large else np.round(values, 2)
    if column == "altitude":
        return np.round(values, -1 if large else 0)
    if column == "densite":
        return np.round(_round_sig(values, 2) if large else values)
    return np.round(_round_sig(values, 3 if large else 4))


def _customdata(
    frame: pd.DataFrame,
    metric: str,
    with_dpe: bool,
    large: bool,
    in_hovertext: str | None = None,
) -> np.ndarray:
    """Hover values of `_hover_fields` (but `in_hovertext`), then the DPE share."""
    columns = [
        _hover_values(frame, column, large)
        for column, *_ in _hover_fields(metric)
        if column != in_hovertext
    ]
    if with_dpe:
        share = frame["part_passoires"].to_numpy(dtype="float64")
        columns.append(np.round(100 * share, 1))
    if not columns:
        return np.empty((len(frame), 0))
    return np.column_stack(columns)


def _median_labels(frame: pd.DataFrame) -> np.ndarray:
    """Median DPE label of each commune ('–' without DPE), for the hover text."""
    rank = frame["etiquette_mediane_rang"].to_numpy(dtype="float64")
    labels = np.array(["–", *rules.LABELS])
    return labels[np.where(np.isfinite(rank), rank + 1, 0).astype(int)]


def _year_text(frame: pd.DataFrame, annee: int | None) -> str:
    if annee is not None:
        return f"Année {annee}"
    if len(frame) and "annee_min" in frame:
        low, high = int(frame["annee_min"].min()), int(frame["annee_max"].max())
        return f"Moyenne annuelle {low}–{high}"
    return "Moyenne annuelle"


def _by_position(frame: pd.DataFrame, decimals: int) -> pd.DataFrame:
    """Order points by rounded latitude, then longitude.

    Only the order of the points changes. Neighbours then share their latitude
    text, which gzip nearly erases: on the national view this saves about 5 %
    of the transferred size, against points listed by code (measured in
    `bench/bench_map.py`).
    """
    lat = np.round(frame["latitude"].to_numpy(dtype="float64"), decimals)
    lon = np.round(frame["longitude"].to_numpy(dtype="float64"), decimals)
    # Only the columns the figures read are reordered (string columns are slow).
    labelled = "libelle" in frame
    columns = [
        column
        for column in frame.columns
        if column in FIGURE_COLUMNS
        or (not labelled and column in ("code_insee", "nom_commune"))
    ]
    return frame[columns].iloc[np.lexsort((lon, lat))]


#: Columns of `map_frame` rows that the figure builders read.
FIGURE_COLUMNS = frozenset(
    {
        "libelle",
        "latitude",
        "longitude",
        "nombre_de_logements",
        "conso_total_mwh",
        "conso_moyenne_mwh",
        "altitude",
        "densite",
        "nombre_dpe",
        "part_passoires",
        "etiquette_mediane_rang",
        "annee_min",
        "annee_max",
    }
)


def scatter_map(
    frame: pd.DataFrame,
    metric: str = DEFAULT_METRIC,
    annee: int | None = None,
    commune: pd.Series | None = None,
    addresses: pd.DataFrame | None = None,
    height: int = 560,
) -> go.Figure:
    """Build the map of communes: one point per commune, sized and coloured.

    Parameters
    ----------
    frame : DataFrame
        One row per commune, as returned by `map_frame` (`code_insee`,
        `nom_commune`, `latitude`, `longitude`, `nombre_de_logements`,
        `conso_total_mwh`, `conso_moyenne_mwh`, `altitude`, `densite`,
        `part_passoires`, `etiquette_mediane_rang`).
    metric : str
        A key of `METRICS`; DPE metrics leave communes without DPE grey.
    annee : int or None
        The year shown in the hover (None: mean over the years).
    commune : Series or None
        The chosen commune (its row), to zoom on.
    addresses : DataFrame or None
        Geolocated Enedis addresses of the chosen commune (see `address_traces`).
    height : int
        Height in pixels.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    traces = []
    frame = frame[frame["latitude"].notna() & frame["longitude"].notna()]
    large = len(frame) > FINE_COORDINATES_MAX_POINTS
    decimals = 2 if large else 3
    if large:
        frame = _by_position(frame, decimals)
    values = _metric_values(frame, metric)
    colour = _colour_settings(metric, values)
    year_text = _year_text(frame, annee)
    dwellings = frame["nombre_de_logements"].to_numpy(dtype="float64")
    size_ref = 2.0 * (np.nanmax(dwellings) if len(frame) else 1.0) / MAX_MARKER_PX**2

    with_dpe = frame["nombre_dpe"].notna().to_numpy()
    groups = [("Communes avec DPE", with_dpe, True)]
    groups.append(("Communes sans DPE", ~with_dpe, False))
    for name, mask, has_dpe in groups:
        part = frame[mask]
        if part.empty:
            continue
        part_values = values[mask]
        available = metric not in DPE_METRICS or has_dpe
        marker: dict[str, Any] = {
            "size": _rounded(part["nombre_de_logements"].to_numpy(), 0),
            "sizemode": "area",
            "sizeref": size_ref,
            "sizemin": MIN_MARKER_PX,
            "opacity": 0.8,
        }
        if available:
            if large and metric in HOVER_COLUMNS:
                # The colour is also the hover value: rounded as the hover is.
                colour_values = _hover_values(part, metric, large)
            else:
                colour_values = _round_sig(part_values, 3)
            marker.update(color=colour_values, coloraxis="coloraxis")
        else:
            marker.update(color=UNAVAILABLE_COLOR)
        shown = metric if available else ""
        # Large views: the last hover field leaves customdata for hovertext (free
        # without DPE): one column fewer in customdata's rows saves about 13 KB
        # of the national fragment once gzipped (measured in bench/bench_map.py).
        spare = _hover_fields(shown)[-1][0] if large and not has_dpe else None
        # Plain dicts, validated once by go.Figure (trace objects are copied).
        trace = {
            "type": "scattermap",
            "lat": _rounded(part["latitude"].to_numpy(), decimals),
            "lon": _rounded(part["longitude"].to_numpy(), decimals),
            "mode": "markers",
            "marker": marker,
            "text": _point_labels(part),
            "customdata": _customdata(part, shown, has_dpe, large, spare),
            "hovertemplate": _hover_template(shown, year_text, has_dpe, large, spare),
            "name": name if available else "Sans données DPE (indisponible)",
            # Coloured points are explained by the colour bar; only the grey
            # "unavailable" points need a legend entry.
            "showlegend": not available,
        }
        if has_dpe:
            trace["hovertext"] = _median_labels(part)
        elif spare:
            trace["hovertext"] = _hover_values(part, spare, large)
        traces.append(trace)

    if addresses is not None and len(addresses):
        traces.extend(address_traces(addresses))
    layout = _layout(_view(frame, commune), height, coloraxis=colour)
    return go.Figure(data=traces, layout=layout)


def density_map(
    frame: pd.DataFrame,
    annee: int | None = None,
    commune: pd.Series | None = None,
    addresses: pd.DataFrame | None = None,
    height: int = 560,
) -> go.Figure:
    """Build the heat map of consumption: communes weighted by total MWh.

    Parameters
    ----------
    frame : DataFrame
        One row per commune, as returned by `map_frame`.
    annee : int or None
        The year shown in the hover (None: mean over the years).
    commune : Series or None
        The chosen commune, to zoom on.
    addresses : DataFrame or None
        Geolocated Enedis addresses of the chosen commune.
    height : int
        Height in pixels.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    frame = frame[frame["latitude"].notna() & frame["longitude"].notna()]
    decimals = 3 if len(frame) <= FINE_COORDINATES_MAX_POINTS else 2
    if len(frame) > FINE_COORDINATES_MAX_POINTS:
        frame = _by_position(frame, decimals)
    total = frame["conso_total_mwh"].to_numpy(dtype="float64")
    high = float(np.quantile(total, 0.98)) if len(total) else 1.0
    # Fewer, larger blobs for many points: the radius shrinks as points multiply.
    radius = 30 if len(frame) <= 400 else 12
    year_text = _year_text(frame, annee)
    traces = [
        {
            "type": "densitymap",
            "lat": _rounded(frame["latitude"].to_numpy(), decimals),
            "lon": _rounded(frame["longitude"].to_numpy(), decimals),
            "z": _rounded(_round_sig(total, 3)),
            "radius": radius,
            "text": _point_labels(frame),
            "hovertemplate": (
                "<b>%{text}</b><br>"
                + year_text
                + "<br>Consommation totale : %{z:,.0f} MWh<extra></extra>"
            ),
            "coloraxis": "coloraxis",
            "name": "Consommation",
        }
    ]
    colour = {
        "colorscale": "YlOrRd",
        "cmin": 0,
        "cmax": float(_round_sig(np.array([high]), 2)[0]) or 1.0,
        "colorbar": {
            "title": {"text": "Consommation totale (MWh)", "side": "right"},
            "thickness": 14,
            "len": 0.8,
        },
    }
    if addresses is not None and len(addresses):
        traces.extend(address_traces(addresses))
    layout = _layout(_view(frame, commune), height, coloraxis=colour)
    return go.Figure(data=traces, layout=layout)


#: Decimals of the address positions: about 10 m, the size of a building.
ADDRESS_DECIMALS = 4
#: Most addresses listed in the hover of a point that merges several addresses.
MERGED_LISTED = 8


def address_points(addresses: pd.DataFrame) -> pd.DataFrame:
    """Return the map points of geolocated addresses, merging those at one position.

    Addresses of one precision whose positions round to the same point (all the
    `commune` ones sit at the commune centre, `rue` ones share their street
    centre) would overlap and only the top one would answer the hover: they
    become one point with the address count, the summed dwellings and
    consumption, and the dwelling-weighted mean per dwelling (the total over the
    dwellings, as Enedis computes it per address). Columns: `precision`,
    `latitude`, `longitude`, `adresses` (hover text), `nombre_adresses`,
    `nombre_de_logements`, `conso_total_mwh`, `conso_moyenne_mwh`.
    """
    located = addresses[addresses["latitude"].notna()]
    precision = located["precision"].astype(str).to_numpy()
    lat = np.round(located["latitude"].to_numpy(dtype="float64"), ADDRESS_DECIMALS)
    lon = np.round(located["longitude"].to_numpy(dtype="float64"), ADDRESS_DECIMALS)
    names = located["adresse"].astype(str).tolist()
    dwellings = located["nombre_de_logements"].to_numpy(dtype="float64")
    total = located["consommation_annuelle_totale_de_l_adresse_mwh"].to_numpy(
        dtype="float64"
    )
    per_dwelling = located[
        "consommation_annuelle_moyenne_par_site_de_l_adresse_mwh"
    ].to_numpy(dtype="float64")

    # A plain dict: a few hundred addresses, most of them alone at their position.
    positions: dict[tuple, list[int]] = {}
    for i, key in enumerate(zip(precision, lat.tolist(), lon.tolist(), strict=True)):
        positions.setdefault(key, []).append(i)
    groups = list(positions.values())
    firsts = np.array([rows[0] for rows in groups], dtype="int64")
    texts = [names[i] for i in firsts]
    counts = np.array([len(rows) for rows in groups], dtype="int64")
    point_dwellings = dwellings[firsts]
    point_total = total[firsts]
    point_mean = per_dwelling[firsts]
    for point in np.flatnonzero(counts > 1):
        rows = groups[point]
        # NaN stays NaN: a sum over a missing value is unknown, not smaller.
        summed = dwellings[rows].sum()
        texts[point] = _listed_addresses([names[i] for i in rows])
        point_dwellings[point] = summed
        point_total[point] = total[rows].sum()
        weighted = (per_dwelling[rows] * dwellings[rows]).sum()
        point_mean[point] = weighted / summed if summed > 0 else np.nan
    return pd.DataFrame(
        {
            "precision": precision[firsts],
            "latitude": lat[firsts],
            "longitude": lon[firsts],
            "adresses": texts,
            "nombre_adresses": counts,
            "nombre_de_logements": point_dwellings,
            "conso_total_mwh": point_total,
            "conso_moyenne_mwh": point_mean,
        }
    )


def _listed_addresses(names: list[str]) -> str:
    """Hover lines of a merged point: its first addresses, then how many are left."""
    listed = "<br>".join(names[:MERGED_LISTED])
    rest = len(names) - MERGED_LISTED
    if rest > 0:
        listed += f"<br>… et {nombre(rest)} autre{'s' if rest > 1 else ''}"
    return listed


#: Hover lines of an address point after its heading (the precision label first).
_ADDRESS_FIGURES = (
    "Position : {label}<br>"
    "Logements : %{{customdata[0]:,.0f}}<br>"
    # Three significant digits, trailing zeros trimmed: 40,4 MWh, 139 MWh.
    "Consommation totale : %{{customdata[1]:,.3~r}} MWh<br>"
    "Moyenne par logement : %{{customdata[2]:,.2f}} MWh"
    "<extra></extra>"
)


def address_traces(addresses: pd.DataFrame) -> list[dict[str, Any]]:
    """Return the traces (dicts) of the Enedis address points of a commune.

    `addresses` has `adresse`, `latitude`, `longitude`, `precision`
    (`adresse`, `rue` or `commune`), `nombre_de_logements`,
    `consommation_annuelle_totale_de_l_adresse_mwh` and
    `consommation_annuelle_moyenne_par_site_de_l_adresse_mwh`. Per precision
    (one colour and legend entry), one trace of single addresses and one of
    merged points (see `address_points`), whose hover counts the addresses.
    """
    traces: list[dict[str, Any]] = []
    points = address_points(addresses)
    columns = {name: points[name].to_numpy() for name in points.columns}
    merged = columns["nombre_adresses"] > 1
    for precision, (label, colour) in PRECISION_STYLE.items():
        of_precision = columns["precision"] == precision
        name = f"Adresses Enedis : {label}"
        for several in (False, True):
            rows = np.flatnonzero(of_precision & (merged == several))
            if not len(rows):
                continue
            customdata = [
                _rounded(columns["nombre_de_logements"][rows], 0),
                _round_sig(columns["conso_total_mwh"][rows], 3),
                _rounded(columns["conso_moyenne_mwh"][rows], 2),
            ]
            if several:
                customdata.append(columns["nombre_adresses"][rows])
            traces.append(
                {
                    "type": "scattermap",
                    "lat": typed_array(columns["latitude"][rows], "f4"),
                    "lon": typed_array(columns["longitude"][rows], "f4"),
                    "mode": "markers",
                    "marker": {"size": 9, "color": colour, "opacity": 0.9},
                    "text": columns["adresses"][rows].astype(str),
                    "customdata": np.column_stack(customdata),
                    "hovertemplate": _address_heading(precision, several)
                    + _ADDRESS_FIGURES.format(label=label),
                    "name": name,
                    "legendgroup": "adresses",
                    # One legend entry per precision, even with two traces.
                    "showlegend": not any(t["name"] == name for t in traces),
                }
            )
    return traces


def _address_heading(precision: str, several: bool) -> str:
    """First hover lines of an address point: the address, or the merged count."""
    if not several:
        return "<b>%{text}</b><br>"
    if precision == "commune":
        where = "situées au centre de la commune"
    else:
        where = "au même point"
    return f"<b>%{{customdata[3]:,.0f}} adresses {where}</b><br>%{{text}}<br>"


def label_chart(counts: pd.Series, commune_name: str, height: int = 240) -> go.Figure:
    """Build the small bar chart of the DPE label distribution of a commune.

    Parameters
    ----------
    counts : Series
        DPE count per label, indexed A..G.
    commune_name : str
        Shown in the title.
    height : int
        Height in pixels.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    counts = counts.reindex(list(rules.LABELS), fill_value=0)
    total = int(counts.sum())
    shares = counts / total if total else counts.astype("float64")
    bar = go.Bar(
        x=list(rules.LABELS),
        y=[int(v) for v in counts],
        marker={"color": [rules.LABEL_COLORS[label] for label in rules.LABELS]},
        customdata=[round(100 * float(s), 1) for s in shares],
        hovertemplate=(
            "Étiquette %{x} : %{y:,.0f} DPE (%{customdata:.1f}\u00a0%)<extra></extra>"
        ),
    )
    layout = {
        "title": {
            "text": f"Étiquettes DPE à {commune_name} ({nombre(total)} DPE)",
            "font": {"size": 14},
        },
        "height": height,
        "margin": {"l": 40, "r": 10, "t": 40, "b": 30},
        "separators": ",\u202f",
        "xaxis": {"title": None, "fixedrange": True},
        "yaxis": {"title": {"text": "DPE"}, "fixedrange": True},
        "template": "none",
        "bargap": 0.15,
    }
    return go.Figure(data=[bar], layout=layout)


def figure_config(filename: str) -> dict[str, Any]:
    """Return the Plotly config: French modebar and PNG file name."""
    return {
        "locale": "fr",
        "locales": {"fr": PLOTLY_FR},
        "displaylogo": False,
        "responsive": True,
        "scrollZoom": True,
        "toImageButtonOptions": {"format": "png", "filename": filename, "scale": 2},
    }


#: Opening tag of the inline script plotly's to_html writes (with or without type).
SCRIPT_OPEN = re.compile(r"<script(?: type=\"text/javascript\")?>")


#: JSON escapes of Latin-1 and Latin Extended-A letters (é, è, ç, œ…).
_UNICODE_ESCAPE = re.compile(r"\\u(00[a-fA-F][0-9a-fA-F]|01[0-7][0-9a-fA-F])")


def _unescape_letters(html: str) -> str:
    """Write accented letters as UTF-8 instead of \\uXXXX escapes (French names).

    Only letters from U+00A0 to U+017F are unescaped; the escapes plotly adds for
    script safety (<, >, &, /, quotes, line separators) stay.
    """

    def replace(match: re.Match) -> str:
        start = match.start()
        backslashes = 0
        while start - backslashes > 0 and html[start - backslashes - 1] == "\\":
            backslashes += 1
        if backslashes % 2:
            # An escaped backslash followed by the text "u00e9": keep it.
            return match.group(0)
        return chr(int(match.group(1), 16))

    if "\\u0" not in html:
        return html
    return _UNICODE_ESCAPE.sub(replace, html)


def figure_html(fig: go.Figure, div_id: str, filename: str) -> str:
    """Return the figure as an HTML fragment (no layout, no plotly.js).

    The figure's script waits for DOMContentLoaded when `Plotly` is not defined
    yet (plotly.js loaded with `defer`); htmx swaps run it at once. The CSP
    nonce is added at render time by the `script_nonce` filter.
    """
    height = fig.layout.height
    html = pio.to_html(
        compact_arrays(
            {
                "data": [trace.to_plotly_json() for trace in fig.data],
                "layout": fig.layout.to_plotly_json(),
            }
        ),
        validate=False,
        full_html=False,
        include_plotlyjs=False,
        div_id=div_id,
        config=figure_config(filename),
        default_height=f"{height}px" if height else "100%",
        default_width="100%",
    )
    html = _unescape_letters(html)
    if len(SCRIPT_OPEN.findall(html)) != 1:
        return html
    html = SCRIPT_OPEN.sub("<script>(function(){var draw=function(){", html)
    closing = (
        "};if(window.Plotly){draw();}"
        "else{document.addEventListener('DOMContentLoaded',draw);}})();</script>"
    )
    head, _, tail = html.rpartition("</script>")
    return head + closing + tail
