"""Plotly figures of the statistics page: pure builders, one per figure.

Each builder takes the table computed by `webapp.stats` (the same table that is
shown under the figure and downloaded as CSV) plus options, and returns a
`plotly.graph_objects.Figure`. Builders touch no request, file or global state.
`fig_html` turns a figure into the HTML fragment served to the page.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from webapp import rules
from webapp.formatting import nombre
from webapp.formatting import pourcent

if TYPE_CHECKING:
    from webapp.stats import Regression

logger = logging.getLogger(__name__)

#: Colour of the main marks (the site accent colour).
ACCENT = "#0b5cad"
#: Colour of groups too small to interpret.
GREY = "#b8c0ca"
#: Height of the figures in pixels; the width follows the container.
HEIGHT = 440
#: French decimal and thousands separators for Plotly ("," then thin space).
SEPARATORS = ", "
#: Plotly config of every figure: responsive, no Plotly logo, French-free tools.
CONFIG = {
    "responsive": True,
    "displaylogo": False,
    "modeBarButtonsToRemove": ["select2d", "lasso2d"],
}

_SCRIPT_TAG = re.compile(r"<script(?=[\s>])")

#: Colour scale of the density view (counts), light to dark blue.
DENSITY_SCALE = [
    [0.0, "#e8f1fa"],
    [0.05, "#c6dbef"],
    [0.2, "#6baed6"],
    [0.5, "#2171b5"],
    [1.0, "#08306b"],
]

_AXIS = {
    "gridcolor": "#e5e9ef",
    "linecolor": "#9aa6b3",
    "zerolinecolor": "#c8d0d9",
    "automargin": True,
}
#: A light template built once: the bundled ones cost ~25 ms per figure to copy.
TEMPLATE = go.layout.Template(
    layout={
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "font": {"color": "#1d2733"},
        "xaxis": _AXIS,
        "yaxis": _AXIS,
        "hoverlabel": {"align": "left"},
    }
)


def layout(title: str, x_title: str, y_title: str, **extra: Any) -> dict[str, Any]:
    """Return the house layout: French separators, axis titles, compact margins.

    Parameters
    ----------
    title : str
        French figure title.
    x_title, y_title : str
        Axis titles, with their units.
    **extra
        More layout properties; ``xaxis`` and ``yaxis`` are merged with the
        axis titles, the others replace the defaults.

    Returns
    -------
    dict
        Plotly layout properties.
    """
    xaxis = {"title": {"text": x_title}, **extra.pop("xaxis", {})}
    yaxis = {"title": {"text": y_title}, **extra.pop("yaxis", {})}
    return {
        "title": {"text": title, "x": 0, "xanchor": "left", "font": {"size": 16}},
        "separators": SEPARATORS,
        "template": TEMPLATE,
        "height": HEIGHT,
        "autosize": True,
        "margin": {"l": 60, "r": 20, "t": 60, "b": 60},
        "font": {"family": "system-ui, -apple-system, Segoe UI, Roboto, sans-serif"},
        "legend": {"orientation": "h", "y": -0.2, "x": 0, "traceorder": "normal"},
        "hoverlabel": {"namelength": -1},
        "xaxis": xaxis,
        "yaxis": yaxis,
        **extra,
    }


def make_figure(data: list[dict[str, Any]], layout: dict[str, Any]) -> go.Figure:
    """Assemble a figure from trace and layout dicts.

    Small arrays are passed as lists: Plotly encodes NumPy arrays as base64
    typed arrays, which only pays off for long ones (the scatter of figure 1).

    Validation is skipped because property-by-property validation costs tens of
    milliseconds per figure, beyond the fragment time budget; the tests build
    every figure again with validation on (`validated`).
    """
    return go.Figure(data=data, layout=layout, _validate=False)


def validated(fig: go.Figure) -> go.Figure:
    """Return a copy of `fig` built with full Plotly validation (for tests)."""
    return go.Figure(fig.to_dict())


def band_label(band: str) -> str:
    """Return '0–600 m' for the band '0-600'."""
    return band.replace("-", "–") + "\u00a0m"


def empty_figure(message: str) -> go.Figure:
    """Return a figure with no axes and a centred French message."""
    return make_figure(
        [],
        {
            "separators": SEPARATORS,
            "template": TEMPLATE,
            "height": 200,
            "xaxis": {"visible": False},
            "yaxis": {"visible": False},
            "annotations": [
                {
                    "text": message,
                    "showarrow": False,
                    "x": 0.5,
                    "y": 0.5,
                    "xref": "paper",
                    "yref": "paper",
                }
            ],
        },
    )


NO_DPE = "Aucun DPE ne correspond à ces filtres."


# --------------------------------------------------------------------------- 1


def plot_altitude_conso(
    table: pd.DataFrame,
    *,
    regression: Regression | None = None,
    binned: bool = False,
) -> go.Figure:
    """Consumption (kWh/m²/an) against commune altitude, with the OLS line.

    Parameters
    ----------
    table : pandas.DataFrame
        Either points (``altitude``, ``conso_5_usages_par_m2_ep``,
        ``nom_commune_ban``) or, when `binned`, non-empty cells
        (``altitude_min``, ``altitude_max``, ``conso_min``, ``conso_max``,
        ``nombre_dpe``) of a regular grid.
    regression : Regression or None
        Least-squares fit drawn as a line over the altitude range.
    binned : bool
        Draw a 2D density (heatmap of counts) instead of a scatter.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    if table.empty:
        return empty_figure(NO_DPE)

    if binned:
        data, x_range = _density_trace(table)
    else:
        data = [
            {
                "type": "scattergl",
                "x": table["altitude"].to_numpy(),
                "y": table["conso_5_usages_par_m2_ep"].to_numpy(),
                "mode": "markers",
                "marker": {"color": ACCENT, "opacity": 0.45, "size": 6},
                "customdata": table[["nom_commune_ban"]].to_numpy().tolist(),
                "name": "DPE",
                "hovertemplate": (
                    "%{customdata[0]}<br>Altitude : %{x:,.0f} m<br>"
                    "Consommation : %{y:,.0f} kWh/m²/an<extra></extra>"
                ),
            }
        ]
        x_range = (float(table["altitude"].min()), float(table["altitude"].max()))

    if regression is not None:
        xs = np.array(x_range)
        slope_text = nombre(regression.slope_per_100m, 1)
        data.append(
            {
                "type": "scatter",
                "x": xs,
                "y": regression.intercept + regression.slope * xs,
                "mode": "lines",
                "line": {"color": "#c0262d", "width": 3, "dash": "dash"},
                "name": f"Moindres carrés : {slope_text} kWh/m²/an par 100 m",
                "hovertemplate": (
                    "Droite des moindres carrés<br>Altitude : %{x:,.0f} m<br>"
                    "Consommation : %{y:,.0f} kWh/m²/an<extra></extra>"
                ),
            }
        )
    title = "Consommation selon l'altitude"
    if binned:
        title += " (densité de DPE)"
    return make_figure(
        data,
        layout(
            title,
            "Altitude moyenne de la commune (m)",
            "Consommation d'énergie primaire (kWh/m²/an)",
        ),
    )


def _density_trace(table: pd.DataFrame) -> tuple[list[dict], tuple[float, float]]:
    x_step = int(table["altitude_max"].iloc[0] - table["altitude_min"].iloc[0])
    y_step = int(table["conso_max"].iloc[0] - table["conso_min"].iloc[0])
    x_edges = np.arange(
        table["altitude_min"].min(), table["altitude_max"].max() + 1, x_step
    )
    y_edges = np.arange(0, table["conso_max"].max() + 1, y_step)
    grid = table.pivot_table(
        index="conso_min", columns="altitude_min", values="nombre_dpe", aggfunc="sum"
    ).reindex(index=y_edges[:-1], columns=x_edges[:-1])
    z = grid.to_numpy(dtype=float)
    trace = {
        "type": "heatmap",
        "x": x_edges[:-1] + x_step / 2,
        "y": y_edges[:-1] + y_step / 2,
        "z": np.where(np.isnan(z), None, z).tolist(),
        # Light for few DPE, dark for many; the steep start keeps sparse cells
        # visible next to the dense valley cells.
        "colorscale": DENSITY_SCALE,
        "colorbar": {"title": {"text": "DPE"}},
        "hoverongaps": False,
        "name": "DPE",
        "hovertemplate": (
            f"Altitude : %{{x:,.0f}} m (± {x_step // 2})<br>"
            f"Consommation : %{{y:,.0f}} kWh/m²/an (± {y_step / 2:g})<br>"
            "DPE : %{z:,.0f}<extra></extra>"
        ),
    }
    return [trace], (float(x_edges[0]), float(x_edges[-1]))


# --------------------------------------------------------------------------- 2


def plot_conso_by_band(table: pd.DataFrame, *, min_group: int = 30) -> go.Figure:
    """Box plots of kWh/m²/an per altitude band from precomputed quartiles.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per band: ``tranche_altitude``, ``nombre_dpe``,
        ``moustache_basse``, ``q1``, ``mediane``, ``q3``, ``moustache_haute``,
        ``moyenne``.
    min_group : int
        Bands with fewer DPE are drawn in grey.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    if table.empty:
        return empty_figure(NO_DPE)

    labels = [band_label(b) for b in table["tranche_altitude"]]
    data = []
    for label, row in zip(labels, table.itertuples(index=False), strict=True):
        colour = ACCENT if row.nombre_dpe >= min_group else GREY
        data.append(
            {
                "type": "box",
                "x": [label],
                "q1": [row.q1],
                "median": [row.mediane],
                "q3": [row.q3],
                "lowerfence": [row.moustache_basse],
                "upperfence": [row.moustache_haute],
                "mean": [row.moyenne],
                "marker": {"color": colour},
                "line": {"color": colour},
                "fillcolor": _with_alpha(colour, 0.25),
                "name": label,
                "showlegend": False,
                "hoverinfo": "skip",
            }
        )
    data.append(
        {
            "type": "scatter",
            "x": labels,
            "y": table["mediane"].tolist(),
            "mode": "markers+text",
            "marker": {"symbol": "diamond", "size": 9, "color": "#1d2733"},
            "text": [f"médiane {nombre(v)}" for v in table["mediane"]],
            "textposition": "middle right",
            "customdata": table[["nombre_dpe", "q1", "q3", "moyenne"]]
            .to_numpy()
            .tolist(),
            "name": "Médiane",
            "showlegend": False,
            "hovertemplate": (
                "%{x}<br>Médiane : %{y:,.0f} kWh/m²/an<br>"
                "Quartiles : %{customdata[1]:,.0f} – %{customdata[2]:,.0f}<br>"
                "Moyenne : %{customdata[3]:,.0f}<br>"
                "DPE : %{customdata[0]:,.0f}<extra></extra>"
            ),
        }
    )
    return make_figure(
        data,
        layout(
            "Consommation par tranche d'altitude (quartiles, moustaches à 1,5 écart "
            "interquartile)",
            "Tranche d'altitude de la commune",
            "Consommation d'énergie primaire (kWh/m²/an)",
        ),
    )


def _with_alpha(hex_colour: str, alpha: float) -> str:
    red, green, blue = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


# --------------------------------------------------------------------------- 3


def plot_extra_cost(
    table: pd.DataFrame,
    *,
    surface: float = 70.0,
    price: float = 0.2016,
    min_group: int = 30,
) -> go.Figure:
    """Yearly extra cost of each band compared with the valley (0–600 m).

    Parameters
    ----------
    table : pandas.DataFrame
        One row per band: ``tranche_altitude``, ``nombre_dpe``,
        ``ecart_vallee_par_m2``, ``surcout_kwh_an``, ``surcout_eur_an``.
    surface : float
        Surface of the reference dwelling (m²), shown in the title.
    price : float
        Energy price (€/kWh), shown in the title.
    min_group : int
        Bands with fewer DPE are drawn in grey.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    if table.empty:
        return empty_figure(NO_DPE)

    amounts = table["surcout_eur_an"]
    bar = {
        "type": "bar",
        "x": [band_label(b) for b in table["tranche_altitude"]],
        "y": amounts.tolist(),
        "marker": {
            "color": [ACCENT if n >= min_group else GREY for n in table["nombre_dpe"]]
        },
        "text": [f"{'+' if v > 0 else ''}{nombre(v)} €" for v in amounts],
        "textposition": "outside",
        "cliponaxis": False,
        "customdata": table[["ecart_vallee_par_m2", "surcout_kwh_an", "nombre_dpe"]]
        .to_numpy()
        .tolist(),
        "name": "Surcoût",
        "hovertemplate": (
            "%{x}<br>Surcoût : %{y:,.0f} €/an<br>"
            "Écart : %{customdata[0]:,.1f} kWh/m²/an "
            "(%{customdata[1]:,.0f} kWh/an)<br>"
            "DPE : %{customdata[2]:,.0f}<extra></extra>"
        ),
    }
    return make_figure(
        [bar],
        layout(
            f"Surcoût annuel par rapport à la vallée, logement de {nombre(surface)} "
            f"m² à {nombre(price, 4)} €/kWh",
            "Tranche d'altitude de la commune",
            "Surcoût (€/an)",
            showlegend=False,
            yaxis={"zeroline": True, "zerolinecolor": "#1d2733"},
        ),
    )


# --------------------------------------------------------------------------- 4


def _share_text(label: str, share: float, minimum: float) -> str:
    return f"{label} {pourcent(share, 0)}" if share >= minimum else ""


def plot_labels_by_band(table: pd.DataFrame, *, min_group: int = 30) -> go.Figure:
    """Stacked shares of the A–G labels per altitude band, passoires annotated.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per band: ``tranche_altitude``, ``nombre_dpe``, ``part_A`` …
        ``part_G`` (shares in [0, 1]) and ``part_passoires``.
    min_group : int
        Bands with fewer DPE are drawn faded and flagged.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    if table.empty:
        return empty_figure(NO_DPE)

    x = [band_label(b) for b in table["tranche_altitude"]]
    opacity = [1.0 if n >= min_group else 0.35 for n in table["nombre_dpe"]]
    data = []
    for label in rules.LABELS:
        shares = table[f"part_{label}"]
        data.append(
            {
                "type": "bar",
                "x": x,
                "y": (shares * 100).tolist(),
                "name": label,
                "marker": {
                    "color": rules.LABEL_COLORS[label],
                    "opacity": opacity,
                    "line": {"color": "#ffffff", "width": 1},
                },
                # Letters in the segments keep the chart readable without colour.
                "text": [_share_text(label, s, 0.05) for s in shares],
                "textposition": "inside",
                "insidetextanchor": "middle",
                "customdata": table[["nombre_dpe"]].to_numpy().tolist(),
                "hovertemplate": (
                    f"%{{x}}<br>Étiquette {label} : %{{y:,.1f}} %<br>"
                    "DPE de la tranche : %{customdata[0]:,.0f}<extra></extra>"
                ),
            }
        )
    annotations = []
    for band, row in zip(x, table.itertuples(index=False), strict=True):
        text = f"Passoires : {pourcent(row.part_passoires, 0)}"
        if row.nombre_dpe < min_group:
            text += f"<br>(moins de {min_group} DPE)"
        annotations.append(
            {"x": band, "y": 100, "yshift": 16, "showarrow": False, "text": text}
        )
    return make_figure(
        data,
        layout(
            "Étiquettes DPE par tranche d'altitude",
            "Tranche d'altitude de la commune",
            "Part des DPE (%)",
            barmode="stack",
            yaxis={"range": [0, 114]},
            annotations=annotations,
        ),
    )


# --------------------------------------------------------------------------- 5


def plot_period_band(table: pd.DataFrame, *, min_group: int = 30) -> go.Figure:
    """Heatmap of the median kWh/m²/an per construction period × altitude band.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per cell: ``periode_construction``, ``tranche_altitude``,
        ``nombre_dpe``, ``mediane``.
    min_group : int
        Cells with fewer DPE are left blank (their count still shows on hover).

    Returns
    -------
    plotly.graph_objects.Figure
    """
    if table.empty:
        return empty_figure(NO_DPE)

    periods = list(dict.fromkeys(table["periode_construction"]))
    present = set(table["tranche_altitude"])
    bands = [b for b in BANDS if b in present]
    median = table.pivot(
        index="periode_construction", columns="tranche_altitude", values="mediane"
    ).reindex(index=periods, columns=bands)
    counts = table.pivot(
        index="periode_construction", columns="tranche_altitude", values="nombre_dpe"
    ).reindex(index=periods, columns=bands)
    z = median.where(counts >= min_group).to_numpy(dtype=float)

    heatmap = {
        "type": "heatmap",
        "x": [band_label(b) for b in bands],
        "y": periods,
        "z": np.where(np.isnan(z), None, z).tolist(),
        # Values printed in the cells keep the chart readable without colour.
        "text": [["" if np.isnan(v) else nombre(v) for v in row] for row in z],
        "texttemplate": "%{text}",
        "customdata": counts.fillna(0).astype(int).to_numpy().tolist(),
        "colorscale": "YlOrRd",
        "colorbar": {"title": {"text": "kWh/m²/an"}},
        "hoverongaps": False,
        "hovertemplate": (
            "Construit : %{y}<br>Altitude : %{x}<br>"
            "Médiane : %{z:,.0f} kWh/m²/an<br>DPE : %{customdata:,.0f}"
            "<extra></extra>"
        ),
    }
    return make_figure(
        [heatmap],
        layout(
            "Consommation médiane par période de construction et altitude",
            "Tranche d'altitude de la commune",
            "Période de construction",
            yaxis={"autorange": "reversed", "type": "category"},
        ),
    )


#: Altitude bands in display order.
BANDS = ("0-600", "600-1200", "1200-1800", "1800-2500")


# --------------------------------------------------------------------------- 6


def plot_labels_by_category(
    table: pd.DataFrame, *, dimensions: Sequence[str] | None = None
) -> go.Figure:
    """Horizontal stacked label shares, one panel per dimension.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per category: ``dimension``, ``categorie``, ``nombre_dpe``,
        ``part_A`` … ``part_G``, ``part_passoires``.
    dimensions : sequence of str, optional
        Panel order (titles of the ``dimension`` column); defaults to the order
        of appearance.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    if table.empty:
        return empty_figure(NO_DPE)

    present = list(dict.fromkeys(table["dimension"]))
    panels = [d for d in (dimensions or present) if d in present]
    sizes = [int((table["dimension"] == d).sum()) for d in panels]
    gap = 0.08
    usable = 1 - gap * (len(panels) - 1)
    total = sum(sizes)

    data: list[dict[str, Any]] = []
    axes: dict[str, Any] = {}
    annotations = []
    top = 1.0
    for number, (panel, size) in enumerate(zip(panels, sizes, strict=True), start=1):
        height = usable * size / total
        domain = [max(top - height, 0.0), top]
        top = domain[0] - gap
        suffix = "" if number == 1 else str(number)
        axes[f"yaxis{suffix}"] = {
            "domain": domain,
            "autorange": "reversed",
            "anchor": "x",
            "automargin": True,
        }
        annotations.append(
            {
                "text": f"<b>{panel}</b>",
                "x": 0,
                "xref": "paper",
                "xanchor": "left",
                "y": domain[1],
                "yref": "paper",
                "yanchor": "bottom",
                "showarrow": False,
            }
        )
        part = table[table["dimension"] == panel]
        names = [
            f"{c} ({nombre(n)})"
            for c, n in zip(part["categorie"], part["nombre_dpe"], strict=True)
        ]
        for label in rules.LABELS:
            shares = part[f"part_{label}"]
            data.append(
                {
                    "type": "bar",
                    "orientation": "h",
                    "y": names,
                    "x": (shares * 100).tolist(),
                    "xaxis": "x",
                    "yaxis": f"y{suffix}",
                    "name": label,
                    "legendgroup": label,
                    "showlegend": number == 1,
                    "marker": {
                        "color": rules.LABEL_COLORS[label],
                        "line": {"color": "#ffffff", "width": 1},
                    },
                    "text": [label if s >= 0.06 else "" for s in shares],
                    "textposition": "inside",
                    "insidetextanchor": "middle",
                    "hovertemplate": (
                        f"%{{y}}<br>Étiquette {label} : %{{x:,.1f}} %<extra></extra>"
                    ),
                }
            )

    properties = layout(
        "Étiquettes par énergie de chauffage, type de bâtiment et période",
        "Part des DPE (%)",
        "",
        barmode="stack",
        height=160 + 24 * total + 40 * len(panels),
        margin={"l": 60, "r": 20, "t": 90, "b": 50},
        legend={
            "orientation": "h",
            "y": 1.0,
            "yanchor": "bottom",
            "yref": "container",
            "x": 1,
            "xanchor": "right",
            "traceorder": "normal",
        },
        xaxis={
            "range": [0, 100],
            "anchor": f"y{len(panels) if len(panels) > 1 else ''}",
        },
        annotations=annotations,
    )
    properties.update(axes)
    return make_figure(data, properties)


# --------------------------------------------------------------------------- 7


def plot_measured_vs_theoretical(
    table: pd.DataFrame, *, year: int | None = None
) -> go.Figure:
    """Per commune: Enedis electricity per dwelling against the DPE mean.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per commune: ``nom_commune``, ``nombre_dpe``,
        ``dpe_moyenne_mwh``, ``enedis_logements``, ``enedis_moyenne_mwh``,
        ``rapport``.
    year : int, optional
        Enedis year, shown in the title.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    if table.empty:
        return empty_figure("Aucune commune comparable dans cette sélection.")

    sizes = np.sqrt(table["enedis_logements"].to_numpy(dtype=float))
    top = float(max(table["dpe_moyenne_mwh"].max(), table["enedis_moyenne_mwh"].max()))
    data = [
        {
            "type": "scatter",
            "x": table["dpe_moyenne_mwh"].tolist(),
            "y": table["enedis_moyenne_mwh"].tolist(),
            "mode": "markers",
            "marker": {
                "color": ACCENT,
                "opacity": 0.7,
                "size": np.clip(sizes, 6, 30),
                "line": {"color": "#ffffff", "width": 1},
            },
            "customdata": table[
                ["nom_commune", "nombre_dpe", "enedis_logements", "rapport"]
            ]
            .to_numpy()
            .tolist(),
            "name": "Communes (taille : logements Enedis)",
            "hovertemplate": (
                "%{customdata[0]}<br>DPE : %{x:,.2f} MWh/an par logement "
                "(%{customdata[1]:,.0f} DPE)<br>"
                "Enedis : %{y:,.2f} MWh/an par logement "
                "(%{customdata[2]:,.0f} logements)<br>"
                "Rapport : %{customdata[3]:,.2f}<extra></extra>"
            ),
        },
        {
            "type": "scatter",
            "x": [0, top * 1.05],
            "y": [0, top * 1.05],
            "mode": "lines",
            "line": {"color": "#5b6775", "dash": "dot"},
            "name": "Égalité mesuré = théorique",
            "hoverinfo": "skip",
        },
    ]
    measured = f"mesurée par Enedis en {year}" if year else "mesurée par Enedis"
    return make_figure(
        data,
        layout(
            f"Électricité {measured} et énergie des DPE, par commune",
            "DPE : énergie finale moyenne, 5 usages (MWh/an par logement)",
            "Enedis : électricité moyenne (MWh/an par logement)",
        ),
    )


# --------------------------------------------------------------------------- 8


def plot_timeline(
    table: pd.DataFrame, *, marks: Sequence[tuple[date, str]] = ()
) -> go.Figure:
    """DPE per month stacked by label, with rule changes as vertical lines.

    Parameters
    ----------
    table : pandas.DataFrame
        One row per month: ``mois`` ('AAAA-MM'), ``nombre_dpe``, ``nombre_A`` …
        ``nombre_G``, ``part_passoires``.
    marks : sequence of (date, str)
        Days to mark with their short French caption.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    if table.empty:
        return empty_figure(NO_DPE)

    months = (table["mois"] + "-15").tolist()
    data = [
        {
            "type": "bar",
            "x": months,
            "y": table[f"nombre_{label}"].tolist(),
            "name": label,
            "marker": {"color": rules.LABEL_COLORS[label], "line": {"width": 0}},
            "customdata": table[["nombre_dpe"]].to_numpy().tolist(),
            "hovertemplate": (
                f"%{{x|%m/%Y}}<br>Étiquette {label} : %{{y:,.0f}} DPE "
                "sur %{customdata[0]:,.0f}<extra></extra>"
            ),
        }
        for label in rules.LABELS
    ]
    shapes, annotations = [], []
    for day, caption in marks:
        shapes.append(
            {
                "type": "line",
                "x0": day.isoformat(),
                "x1": day.isoformat(),
                "y0": 0,
                "y1": 1,
                "yref": "paper",
                "line": {"color": "#1d2733", "width": 2, "dash": "dash"},
            }
        )
        annotations.append(
            {
                "x": day.isoformat(),
                "y": 1,
                "yref": "paper",
                "yanchor": "bottom",
                "showarrow": False,
                "text": f"{caption} ({day.strftime('%d/%m/%Y')})",
                "bgcolor": "rgba(255,255,255,0.85)",
            }
        )
    return make_figure(
        data,
        layout(
            "DPE établis par mois et par étiquette",
            "Mois d'établissement du DPE",
            "Nombre de DPE",
            barmode="stack",
            bargap=0.1,
            xaxis={"type": "date", "tickformat": "%m/%Y"},
            shapes=shapes,
            annotations=annotations,
            margin={"l": 60, "r": 20, "t": 80, "b": 60},
        ),
    )


# --------------------------------------------------------------------------- HTML


def fig_html(fig: go.Figure, div_id: str, nonce: str | None = None) -> str:
    """Return the HTML fragment of a figure for a page that loads plotly.js.

    Parameters
    ----------
    fig : plotly.graph_objects.Figure
        The figure.
    div_id : str
        Stable id of the figure's ``div`` (tests and swaps rely on it).
    nonce : str, optional
        Content-Security-Policy nonce added to the inline ``<script>`` tags.

    Returns
    -------
    str
        A ``div`` and its inline script, without plotly.js.
    """
    html = fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=div_id,
        config=CONFIG,
        default_width="100%",
        default_height=f"{fig.layout.height or HEIGHT}px",
    )
    if nonce:
        html = _SCRIPT_TAG.sub(f'<script nonce="{nonce}"', html)
    return html
