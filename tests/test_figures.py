"""Figure builders and their data on tiny seeded frames."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from webapp import figures
from webapp import rules
from webapp import stats


def make_dpe(n: int = 200, seed: int = 0, **overrides) -> pd.DataFrame:
    """Return a small DPE frame with the columns the statistics use."""
    rng = np.random.default_rng(seed)
    altitude = rng.uniform(300, 2400, n)
    conso = 120 + 0.1 * altitude + rng.normal(0, 20, n)
    frame = pd.DataFrame(
        {
            "numero_dpe": [f"DPE{i:05d}" for i in range(n)],
            "altitude": altitude,
            "conso_5_usages_par_m2_ep": conso,
            "conso_5_usages_par_m2_ef": conso / 1.3,
            "conso_5_usages_ef": conso / 1.3 * 60,
            "surface_habitable_logement": rng.uniform(20, 150, n),
            "etiquette_dpe": rng.choice(list(rules.LABELS), n),
            "type_batiment": rng.choice(["maison", "appartement"], n),
            "periode_construction": rng.choice(list(stats.PERIODES[:4]), n),
            "type_energie_principale_chauffage": rng.choice(
                ["Électricité", "Gaz naturel"], n
            ),
            "source": rng.choice(["existant", "neuf"], n),
            "code_insee_ban": rng.choice(["74010", "74056"], n),
            "nom_commune_ban": "Annecy",
            "date_etablissement_dpe": pd.Timestamp("2024-01-01")
            + pd.to_timedelta(rng.integers(0, 900, n), unit="D"),
        }
    )
    frame["tranche_altitude"] = pd.cut(
        frame["altitude"],
        bins=[0, 600, 1200, 1800, 2500],
        labels=list(stats.BAND_NAMES),
        right=False,
    )
    for key, value in overrides.items():
        frame[key] = value
    return frame


def build(name: str, frame: pd.DataFrame, **context):
    """Compute a figure's result and its figure, checked by Plotly's validators."""
    result = stats.figure_result(name, frame, stats.Context(**context))
    fig = result.figure()
    figures.validated(fig)
    return result, fig


def test_ols_slope_recovered_on_linear_data():
    frame = make_dpe(500)
    frame["conso_5_usages_par_m2_ep"] = 50 + 0.2 * frame["altitude"]

    regression = stats.altitude_regression(frame)

    assert regression.slope_per_100m == pytest.approx(20.0)
    assert regression.intercept == pytest.approx(50.0)
    assert regression.r2 == pytest.approx(1.0)
    assert regression.p_value < 1e-10


def test_ols_on_noisy_data_and_insight_from_data():
    frame = make_dpe(400, seed=3)

    result, fig = build("altitude", frame)

    slope = result.options["regression"].slope_per_100m
    assert slope == pytest.approx(10.0, abs=1.5)
    assert stats.nombre(slope, 1) in result.insight
    assert "R² = " in result.insight and "400 DPE" in result.insight
    line = fig.data[-1]
    assert line.mode == "lines"
    assert (line.y[1] - line.y[0]) / (line.x[1] - line.x[0]) == pytest.approx(
        slope / 100
    )


def test_altitude_without_variation_has_no_slope():
    frame = make_dpe(50, altitude=900.0)

    result, fig = build("altitude", frame)

    assert result.options["regression"] is None
    assert "Pas assez de variation" in result.insight
    assert all(trace.mode != "lines" for trace in fig.data)


def test_altitude_switches_to_density_above_the_point_limit(monkeypatch):
    monkeypatch.setattr(stats, "MAX_SCATTER_POINTS", 100)
    frame = make_dpe(300)

    result, fig = build("altitude", frame)

    assert result.options["binned"] is True
    assert fig.data[0].type == "heatmap"
    assert result.table["nombre_dpe"].sum() == 300
    assert set(result.table.columns) == set(stats.ALTITUDE_BIN_COLUMNS)


def test_altitude_small_selection_is_a_scatter_of_every_point():
    frame = make_dpe(80)

    result, fig = build("altitude", frame)

    assert fig.data[0].type == "scattergl"
    assert len(fig.data[0].x) == len(result.table) == 80
    assert "customdata" in fig.data[0].hovertemplate
    assert "conso_5_usages" not in fig.data[0].hovertemplate


def test_band_edges_follow_the_store_bands():
    frame = make_dpe(4, altitude=[0.0, 599.9, 600.0, 1800.0])
    frame["tranche_altitude"] = pd.cut(
        frame["altitude"],
        bins=[0, 600, 1200, 1800, 2500],
        labels=list(stats.BAND_NAMES),
        right=False,
    )

    table = stats.band_stats(frame)

    assert dict(zip(table["tranche_altitude"], table["nombre_dpe"], strict=True)) == {
        "0-600": 2,
        "600-1200": 1,
        "1800-2500": 1,
    }


def test_band_quartiles_and_small_bands_greyed():
    frame = make_dpe(300, seed=1)
    frame.loc[frame.index[:20], "tranche_altitude"] = "1800-2500"
    frame.loc[frame.index[20:], "tranche_altitude"] = np.where(
        frame.index[20:] % 2 == 0, "0-600", "600-1200"
    )

    result, fig = build("bands", frame)

    valley = frame.loc[frame["tranche_altitude"] == "0-600", "conso_5_usages_par_m2_ep"]
    row = result.table.set_index("tranche_altitude").loc["0-600"]
    assert row["mediane"] == pytest.approx(valley.median(), abs=0.05)
    assert row["q1"] == pytest.approx(valley.quantile(0.25), abs=0.05)
    boxes = [trace for trace in fig.data if trace.type == "box"]
    assert boxes[-1].marker.color == figures.GREY
    assert boxes[0].marker.color == figures.ACCENT
    assert any("1800–2500" in note for note in result.notes)


def test_extra_cost_uses_surface_and_price():
    frame = make_dpe(2, conso_5_usages_par_m2_ef=[100.0, 150.0])
    frame["tranche_altitude"] = ["0-600", "1200-1800"]
    filters = stats.StatsFilters(surface=80.0, prix_kwh=0.25)

    result, fig = build("extra-cost", frame, filters=filters)

    row = result.table.set_index("tranche_altitude").loc["1200-1800"]
    assert row["surcout_kwh_an"] == 50 * 80
    assert row["surcout_eur_an"] == 50 * 80 * 0.25
    assert list(fig.data[0].y) == list(result.table["surcout_eur_an"])
    assert "80 m²" in fig.layout.title.text


def test_extra_cost_without_valley_says_so():
    frame = make_dpe(40)
    frame["tranche_altitude"] = "1200-1800"

    result, _ = build("extra-cost", frame)

    assert result.empty
    assert "vallée" in result.insight


def test_label_shares_sum_to_one_and_colours_come_from_rules():
    frame = make_dpe(300, seed=2)

    result, fig = build("labels-bands", frame)

    shares = result.table[[f"part_{label}" for label in rules.LABELS]].sum(axis=1)
    assert np.allclose(shares, 1.0, atol=1e-3)
    colours = {trace.name: trace.marker.color for trace in fig.data}
    assert colours == rules.LABEL_COLORS


def test_passoire_ratio_insight_computed_from_the_table():
    table = pd.DataFrame(
        {
            "tranche_altitude": ["0-600", "600-1200", "1200-1800"],
            "nombre_dpe": [100, 100, 10],
            "part_passoires": [0.1, 0.25, 0.9],
        }
    )

    sentence = stats.passoire_ratio_insight(table)

    # The 1200–1800 band has fewer than 30 DPE: it is left out of the comparison.
    assert "25\u00a0%" in sentence and "2,5 fois" in sentence
    assert "10\u00a0%" in sentence


def test_period_band_heatmap_blanks_small_cells():
    frame = make_dpe(200, seed=4)

    result, fig = build("period-band", frame)

    z = np.array(fig.data[0].z, dtype=float)
    small = result.table["nombre_dpe"] < stats.MIN_GROUP
    assert np.isnan(z).sum() == small.sum()
    assert fig.data[0].hovertemplate.count("DPE") == 1


def test_labels_by_category_omits_small_categories():
    frame = make_dpe(200, seed=5)
    frame.loc[frame.index[:5], "type_energie_principale_chauffage"] = "GPL"

    result, fig = build("labels-categories", frame)

    assert "GPL" not in set(result.table["categorie"])
    assert any("GPL (5)" in note for note in result.notes)
    assert {trace.yaxis for trace in fig.data} == {"y", "y2", "y3"}


def test_measured_vs_theoretical_joins_by_commune():
    frame = make_dpe(100, code_insee_ban="74010", conso_5_usages_ef=8000.0)
    enedis = pd.DataFrame(
        {
            "code_commune": ["74010", "74010", "74999"],
            "annee": [2023, 2024, 2024],
            "nom_commune": ["Annecy", "Annecy", "Ailleurs"],
            "nombre_de_logements": [20, 40, 30],
            "consommation_annuelle_totale_de_l_adresse_mwh": [60.0, 100.0, 90.0],
        }
    )

    result, fig = build("measured", frame, enedis=stats.enedis_per_dwelling(enedis))

    row = result.table.iloc[0]
    assert len(result.table) == 1 and row["annee"] == 2024
    assert row["dpe_moyenne_mwh"] == 8.0
    assert row["enedis_moyenne_mwh"] == 2.5
    assert row["rapport"] == pytest.approx(2.5 / 8.0, abs=0.01)
    assert "31\u00a0%" in result.insight
    assert any("10 logements" in note for note in result.notes)


def test_enedis_small_addresses_are_dropped():
    enedis = pd.DataFrame(
        {
            "code_commune": ["74010", "74010"],
            "annee": [2024, 2024],
            "nom_commune": ["Annecy", "Annecy"],
            "nombre_de_logements": [5, 20],
            "consommation_annuelle_totale_de_l_adresse_mwh": [50.0, 40.0],
        }
    )

    table = stats.enedis_per_dwelling(enedis)

    assert table["enedis_moyenne_mwh"].tolist() == [2.0]


def test_timeline_counts_months_and_marks_rule_changes():
    frame = make_dpe(300, seed=6)

    result, fig = build("timeline", frame)

    assert result.table["nombre_dpe"].sum() == 300
    per_label = result.table[[f"nombre_{label}" for label in rules.LABELS]]
    assert (per_label.sum(axis=1) == result.table["nombre_dpe"]).all()
    assert result.table["mois"].iloc[0] == "2024-01"
    marked = {shape.x0 for shape in fig.layout.shapes}
    assert marked == {"2024-07-01", "2026-01-01"} & marked
    assert date(2026, 1, 1).isoformat() in marked


@pytest.mark.parametrize("name", list(stats.FIGURES))
def test_empty_input_gives_the_empty_message(name):
    frame = make_dpe(10).iloc[0:0]

    result = stats.figure_result(name, frame, stats.Context())

    assert result.empty
    assert result.insight.startswith("Aucun")
    assert len(result.table) == 0
    assert figures.validated(result.figure()).layout.annotations


@pytest.mark.parametrize("name", list(stats.FIGURES))
def test_every_figure_is_valid_french_and_responsive(name):
    frame = make_dpe(200, seed=7)
    enedis = stats.enedis_per_dwelling(
        pd.DataFrame(
            {
                "code_commune": ["74010", "74056"],
                "annee": [2024, 2024],
                "nom_commune": ["Annecy", "Annecy"],
                "nombre_de_logements": [40, 40],
                "consommation_annuelle_totale_de_l_adresse_mwh": [100.0, 120.0],
            }
        )
    )

    result, fig = build(name, frame, enedis=enedis)
    html = figures.fig_html(fig, f"fig-{name}", nonce="n0nce")

    assert fig.layout.separators == ", "
    assert fig.layout.title.text
    for trace in fig.data:
        template = trace.hovertemplate or ""
        assert "conso_5" not in template and "nombre_dpe" not in template
    assert f'id="fig-{name}"' in html
    assert '<script nonce="n0nce"' in html
    assert '"responsive": true' in html
    assert "<html" not in html
