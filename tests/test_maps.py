"""Map data, filters, table, CSV and figure builders, on tiny frames."""

from __future__ import annotations

import base64
import csv
import io
import json

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from werkzeug.datastructures import MultiDict

from webapp import maps


def tiny_communes() -> pd.DataFrame:
    """Four communes in two départements, one without altitude."""
    return pd.DataFrame(
        {
            "code_insee": ["74010", "74056", "74281", "73065"],
            "nom_standard": [
                "Annecy",
                "Chamonix-Mont-Blanc",
                "Thonon-les-Bains",
                "Chambéry",
            ],
            "dep_code": ["74", "74", "74", "73"],
            "dep_nom": ["Haute-Savoie", "Haute-Savoie", "Haute-Savoie", "Savoie"],
            "latitude_centre": [45.891, 45.924, 46.366, 45.583],
            "longitude_centre": [6.126, 6.869, 6.478, 5.909],
            "altitude_moyenne": [554.0, 2445.0, np.nan, 270.0],
            "altitude_minimale": [440.0, 995.0, 370.0, 250.0],
            "altitude_maximale": [1000.0, 4810.0, 480.0, 560.0],
            "densite": [8258.0, 35.0, 2259.0, 2836.0],
        }
    )


def tiny_enedis_communes() -> pd.DataFrame:
    """Two years for three communes; Chambéry only in 2023; an unknown code."""
    return pd.DataFrame(
        {
            "code_commune": [
                "74010",
                "74010",
                "74056",
                "74056",
                "74281",
                "73065",
                "99999",
            ],
            "annee": [2022, 2023, 2022, 2023, 2023, 2023, 2023],
            "nombre_de_logements": [100.0, 110.0, 20.0, 20.0, 50.0, 80.0, 10.0],
            "conso_total_mwh": [300.0, 330.0, 180.0, 160.0, 100.0, 240.0, 5.0],
        }
    )


def tiny_dpe() -> pd.DataFrame:
    """DPE labels: Annecy A, C, C, F (median C, 1/4 passoire); Chamonix G, G, E."""
    labels = ["A", "C", "C", "F", "G", "G", "E"]
    codes = ["74010"] * 4 + ["74056"] * 3
    return pd.DataFrame(
        {
            "etiquette_dpe": pd.Categorical(labels, categories=list("ABCDEFG")),
            "code_insee_ban": pd.Series(codes, dtype="string"),
        }
    )


@pytest.fixture
def data() -> maps.MapData:
    return maps.build_map_data(tiny_enedis_communes(), tiny_communes(), tiny_dpe())


# --------------------------------------------------------------------------- data


def test_build_joins_communes_and_dpe_metrics(data):
    row = data.by_year[2023].loc["74010"]
    assert row["nom_commune"] == "Annecy"
    assert row["nombre_de_logements"] == 110
    assert row["conso_moyenne_mwh"] == pytest.approx(3.0)
    assert row["part_passoires"] == pytest.approx(0.25)
    assert "ABCDEFG"[int(row["etiquette_mediane_rang"])] == "C"
    chamonix = data.by_year[2023].loc["74056"]
    assert chamonix["part_passoires"] == pytest.approx(2 / 3)
    assert "ABCDEFG"[int(chamonix["etiquette_mediane_rang"])] == "G"


def test_build_drops_unknown_communes_and_lists_departements(data):
    assert "99999" not in set(data.rows["code_insee"])
    assert data.departements == {"73": "Savoie", "74": "Haute-Savoie"}
    assert data.years == (2022, 2023)


def test_altitude_falls_back_to_min_max_mean(data):
    assert data.by_year[2023].loc["74281", "altitude"] == pytest.approx(425.0)


def test_communes_without_dpe_have_no_dpe_metrics(data):
    row = data.by_year[2023].loc["73065"]
    assert np.isnan(row["part_passoires"])
    assert np.isnan(row["nombre_dpe"])


def test_all_years_is_the_mean_per_year(data):
    annecy = data.all_years.loc["74010"]
    assert annecy["nombre_de_logements"] == pytest.approx(105)
    assert annecy["conso_total_mwh"] == pytest.approx(315)
    assert (annecy["annee_min"], annecy["annee_max"]) == (2022, 2023)


def test_median_label_is_the_lower_median():
    dpe = pd.DataFrame(
        {
            "etiquette_dpe": pd.Categorical(["B", "D"], categories=list("ABCDEFG")),
            "code_insee_ban": pd.Series(["74010", "74010"], dtype="string"),
        }
    )
    metrics, counts = maps.dpe_metrics(dpe)
    assert "ABCDEFG"[int(metrics.loc["74010", "etiquette_mediane_rang"])] == "B"
    assert counts.loc["74010"].tolist() == [0, 1, 0, 1, 0, 0, 0]


# --------------------------------------------------------------------------- filters


def test_default_filters_open_on_haute_savoie(data):
    filters = maps.parse_filters(MultiDict(), data)
    assert filters.departements == ("74",)
    assert filters.annee is None
    assert filters.query() == []


def test_parse_all_fields(data):
    args = MultiDict(
        [
            ("departement", "73"),
            ("departement", "74"),
            ("annee", "2023"),
            ("indicateur", "part_passoires"),
            ("densite_min", "1 000,5"),
            ("altitude_max", "2000"),
            ("commune", "Annecy (74010)"),
            ("mode", "chaleur"),
            ("tri", "nom_commune"),
            ("ordre", "asc"),
            ("page", "2"),
        ]
    )
    filters = maps.parse_filters(args, data)
    assert filters.departements == ("73", "74")
    assert filters.densite_min == 1000.5
    assert filters.commune == "74010"
    assert filters.mode == "chaleur"
    # Round trip: the query string of a state parses back to the same state.
    assert maps.parse_filters(MultiDict(filters.query()), data) == filters


def test_all_france_is_kept_in_the_query(data):
    filters = maps.parse_filters(MultiDict([("departement", "tous")]), data)
    assert filters.departements == ()
    assert filters.query() == [("departement", "tous")]


@pytest.mark.parametrize(
    ("args", "field", "words"),
    [
        ({"annee": "2031"}, "annee", "Année inconnue"),
        ({"annee": "deux"}, "annee", "Année inconnue"),
        ({"densite_min": "abc"}, "densite_min", "Saisissez un nombre"),
        ({"altitude_max": "12m"}, "altitude_max", "Saisissez un nombre"),
        ({"altitude_min": "900", "altitude_max": "300"}, "altitude_max", "inférieur"),
        ({"densite_min": "-4"}, "densite_min", "hors limites"),
        ({"commune": "Atlantide"}, "commune", "Commune inconnue"),
        ({"commune": "a"}, "commune", "Plusieurs communes"),
        ({"departement": "99"}, "departement", "Département inconnu"),
        ({"indicateur": "co2"}, "indicateur", "Indicateur inconnu"),
        ({"mode": "3d"}, "mode", "Mode inconnu"),
        ({"tri": "secret"}, "tri", "tri inconnue"),
        ({"ordre": "up"}, "ordre", "Ordre de tri"),
        ({"page": "0"}, "page", "page invalide"),
    ],
    ids=lambda value: str(value)[:24],
)
def test_bad_filters_name_the_field_in_french(data, args, field, words):
    with pytest.raises(maps.FilterError) as caught:
        maps.parse_filters(MultiDict(args), data)
    assert field in caught.value.fields
    assert words in caught.value.fields[field]


def test_several_bad_fields_are_all_reported(data):
    with pytest.raises(maps.FilterError) as caught:
        maps.parse_filters(MultiDict({"annee": "x", "densite_max": "y"}), data)
    assert set(caught.value.fields) == {"annee", "densite_max"}


def test_find_commune_by_code_label_or_name(data):
    assert data.find_commune("74056") == "74056"
    assert data.find_commune("Chamonix-Mont-Blanc (74056)") == "74056"
    assert data.find_commune("chambery") == "73065"
    assert data.find_commune("Nowhere") is None


def test_suggest_accent_insensitive_prefix_first(data):
    # Prefix matches come in the order of the communes table.
    assert data.suggest("cham") == [
        ("74056", "Chamonix-Mont-Blanc"),
        ("73065", "Chambéry"),
    ]
    assert data.suggest("bains") == [("74281", "Thonon-les-Bains")]
    assert data.suggest("740")[0][0].startswith("740")
    assert data.suggest("  ") == []


# --------------------------------------------------------------------------- select


def test_map_frame_filters_departement_density_altitude(data):
    filters = maps.MapFilters(departements=("74",), annee=2023)
    assert set(maps.map_frame(data, filters).index) == {"74010", "74056", "74281"}

    dense = maps.MapFilters(departements=(), annee=2023, densite_min=2000)
    assert set(maps.map_frame(data, dense).index) == {"74010", "74281", "73065"}

    low = maps.MapFilters(departements=(), annee=2023, altitude_max=600)
    assert set(maps.map_frame(data, low).index) == {"74010", "74281", "73065"}


def test_table_rows_sorted_and_paginated(data):
    filters = maps.MapFilters(departements=(), tri="conso_total_mwh", ordre="desc")
    rows = maps.table_rows(data, filters)
    assert list(rows.columns) == list(maps.TABLE_COLUMNS)
    assert rows["conso_total_mwh"].tolist() == sorted(
        rows["conso_total_mwh"], reverse=True
    )
    assert len(rows) == 6

    page = maps.table_page(rows, page=2, size=4)
    assert (page.count, page.page, page.pages, len(page.rows)) == (6, 2, 2, 2)
    assert maps.table_page(rows, page=9, size=4).page == 2


def test_table_sort_puts_missing_last_and_keeps_code_order_for_ties(data):
    filters = maps.MapFilters(departements=(), tri="part_passoires", ordre="asc")
    rows = maps.table_rows(data, filters)
    assert rows["part_passoires"].isna().tolist()[-1]
    annecy = rows[rows["code_insee"] == "74010"]
    assert annecy["annee"].tolist() == [2022, 2023]


def test_display_rows_are_french(data):
    rows = maps.table_rows(
        data, maps.MapFilters(annee=2023, tri="code_insee", ordre="asc")
    )
    cells = maps.display_rows(rows)
    annecy = cells[0]
    assert annecy[:3] == ["74010", "Annecy", "2023"]
    assert annecy[7] == "3,00"
    assert annecy[8] == "25,0\u00a0%"
    thonon = cells[2]
    assert thonon[8] == "–"


def test_csv_has_bom_semicolons_and_the_table_columns(data):
    rows = maps.table_rows(data, maps.MapFilters(departements=(), annee=2023))
    payload = maps.csv_bytes(rows)
    assert payload.startswith(b"\xef\xbb\xbf")
    reader = list(csv.reader(io.StringIO(payload.decode("utf-8-sig")), delimiter=";"))
    assert reader[0] == list(maps.TABLE_COLUMNS.values())
    assert len(reader) == 1 + len(rows)
    annecy = next(line for line in reader if line[0] == "74010")
    assert annecy[6:9] == ["330", "3,00", "25,0"]


def test_describe_summarises_the_map(data):
    filters = maps.MapFilters(annee=2023, commune="74010")
    text = maps.describe(maps.map_frame(data, filters), filters, data)
    assert "Carte de 3 communes (Haute-Savoie (74)), en 2023" in text
    assert "Annecy (74010)" in text


# --------------------------------------------------------------------------- figures


def _frame(data, **changes):
    filters = maps.MapFilters(**{"departements": (), "annee": 2023, **changes})
    return maps.map_frame(data, filters)


def test_scatter_map_points_sized_coloured_with_titled_colour_bar(data):
    fig = maps.scatter_map(_frame(data), "conso_total_mwh", 2023)
    assert isinstance(fig, go.Figure)
    traces = [t for t in fig.data if t.type == "scattermap"]
    assert sum(len(t.lat) for t in traces) == 4
    assert all(t.marker.sizemode == "area" for t in traces)
    assert "Consommation totale" in fig.layout.coloraxis.colorbar.title.text
    assert fig.layout.map.style == "open-street-map"
    template = traces[0].hovertemplate
    for words in ("Logements", "Consommation totale", "Moyenne par logement"):
        assert words in template
    assert "Année 2023" in template


def test_dpe_metric_leaves_communes_without_dpe_grey(data):
    fig = maps.scatter_map(_frame(data), "part_passoires", 2023)
    grey = [t for t in fig.data if isinstance(t.marker.color, str)]
    assert grey[0].marker.color == maps.UNAVAILABLE_COLOR
    assert len(grey) == 1
    assert sorted(grey[0].text) == ["Chambéry (73065)", "Thonon-les-Bains (74281)"]
    assert "indisponible" in grey[0].name


def test_median_label_colour_bar_reads_a_to_g(data):
    fig = maps.scatter_map(_frame(data), "etiquette_mediane", 2023)
    assert list(fig.layout.coloraxis.colorbar.ticktext) == list("ABCDEFG")


def test_density_map_is_weighted_by_consumption(data):
    fig = maps.density_map(_frame(data), 2023)
    assert fig.data[0].type == "densitymap"
    assert sorted(fig.data[0].z) == [100, 160, 240, 330]


def test_commune_view_zooms_and_adds_address_points(data):
    frame = _frame(data)
    addresses = pd.DataFrame(
        {
            "adresse": ["1 RUE A", "2 RUE B", "3 RUE C"],
            "latitude": [45.9, 45.91, np.nan],
            "longitude": [6.12, 6.13, np.nan],
            "precision": ["adresse", "commune", "aucune"],
            "nombre_de_logements": [10, 20, 30],
            "consommation_annuelle_totale_de_l_adresse_mwh": [20.0, 40.0, 60.0],
            "consommation_annuelle_moyenne_par_site_de_l_adresse_mwh": [2.0, 2.0, 2.0],
        }
    )
    fig = maps.scatter_map(
        frame, commune=frame.loc["74010"], addresses=addresses, annee=2023
    )
    assert fig.layout.map.zoom == maps.COMMUNE_ZOOM
    assert fig.layout.map.center.lat == pytest.approx(45.891)
    names = [t.name for t in fig.data if t.name and t.name.startswith("Adresses")]
    assert len(names) == 2
    assert "Position : adresse exacte (DPE)" in fig.data[-2].hovertemplate


def _addresses(**columns) -> pd.DataFrame:
    """Enedis address rows of one commune, with the columns of `address_traces`."""
    n = len(columns["adresse"])
    frame = {
        "latitude": [45.9] * n,
        "longitude": [6.12] * n,
        "precision": ["adresse"] * n,
        "nombre_de_logements": [10.0] * n,
        "consommation_annuelle_totale_de_l_adresse_mwh": [20.0] * n,
        "consommation_annuelle_moyenne_par_site_de_l_adresse_mwh": [2.0] * n,
    }
    frame.update(columns)
    return pd.DataFrame(frame)


def test_addresses_at_one_position_merge_into_one_point_with_sums():
    addresses = _addresses(
        adresse=["1 RUE A", "3 RUE A", "5 RUE A", "9 RUE B"],
        latitude=[45.90001, 45.90004, 45.9, 45.91],
        longitude=[6.12, 6.12003, 6.12, 6.13],
        precision=["rue", "rue", "adresse", "rue"],
        nombre_de_logements=[10.0, 30.0, 12.0, 20.0],
        consommation_annuelle_totale_de_l_adresse_mwh=[20.0, 120.0, 30.0, 50.0],
        consommation_annuelle_moyenne_par_site_de_l_adresse_mwh=[2.0, 4.0, 2.5, 2.5],
    )
    points = maps.address_points(addresses).set_index("adresses")
    # The two "rue" addresses round to one position; the "adresse" one at the
    # same place keeps its own point (another precision, another colour).
    assert sorted(points.index) == ["1 RUE A<br>3 RUE A", "5 RUE A", "9 RUE B"]
    merged = points.loc["1 RUE A<br>3 RUE A"]
    assert merged["nombre_adresses"] == 2
    assert merged["nombre_de_logements"] == 40
    assert merged["conso_total_mwh"] == 140
    # Weighted by dwellings: (10 x 2 + 30 x 4) / 40, the total over the dwellings.
    assert merged["conso_moyenne_mwh"] == pytest.approx(3.5)
    assert points.loc["9 RUE B", "nombre_adresses"] == 1
    assert points.loc["9 RUE B", "conso_moyenne_mwh"] == 2.5


def test_a_missing_value_leaves_the_merged_sum_unknown():
    addresses = _addresses(
        adresse=["1 RUE A", "2 RUE A"],
        consommation_annuelle_totale_de_l_adresse_mwh=[20.0, np.nan],
    )
    points = maps.address_points(addresses)
    assert len(points) == 1
    assert np.isnan(points["conso_total_mwh"].iloc[0])
    assert points["nombre_de_logements"].iloc[0] == 20


def test_addresses_at_the_commune_centre_become_one_counted_point():
    names = [f"{k} RUE C" for k in range(1, 12)]
    addresses = _addresses(
        adresse=["7 RUE D", *names],
        latitude=[45.95, *[45.891] * 11],
        longitude=[6.2, *[6.126] * 11],
        precision=["adresse", *["commune"] * 11],
    )
    traces = maps.address_traces(addresses)
    assert [len(t["text"]) for t in traces] == [1, 1]
    centre = traces[1]
    template = centre["hovertemplate"]
    assert template.startswith(
        "<b>%{customdata[3]:,.0f} adresses situées au centre de la commune</b>"
    )
    assert "Position : centre de la commune" in template
    assert centre["customdata"].tolist() == [[110, 220, 2, 11]]
    listed = centre["text"][0].split("<br>")
    assert listed[: maps.MERGED_LISTED] == names[: maps.MERGED_LISTED]
    assert listed[-1] == "… et 3 autres"
    # Each precision has one legend entry, whatever the number of its traces.
    assert [t["showlegend"] for t in traces] == [True, True]


def test_single_and_merged_points_of_a_precision_share_one_legend_entry():
    addresses = _addresses(
        adresse=["1 RUE A", "2 RUE A", "8 RUE B"],
        latitude=[45.9, 45.9, 45.92],
    )
    traces = maps.address_traces(addresses)
    assert [t["name"] for t in traces] == ["Adresses Enedis : adresse exacte (DPE)"] * 2
    assert [t["showlegend"] for t in traces] == [True, False]
    assert traces[0]["hovertemplate"].startswith("<b>%{text}</b><br>Position : ")
    assert "2 RUE A" in traces[1]["text"][0]
    assert "adresses au même point" in traces[1]["hovertemplate"]


def test_address_positions_are_float32_typed_arrays_at_building_precision():
    addresses = _addresses(
        adresse=["1 RUE A", "2 RUE B"],
        latitude=[45.891234, 45.9],
        longitude=[6.126789, 6.1],
    )
    lat = maps.address_traces(addresses)[0]["lat"]
    assert lat["dtype"] == "f4"
    decoded = np.frombuffer(base64.b64decode(lat["bdata"]), dtype="<f4")
    assert decoded == pytest.approx([45.8912, 45.9], abs=1e-5)


def test_address_totals_keep_three_significant_digits():
    addresses = _addresses(
        adresse=["1 RUE A", "2 RUE B", "3 RUE C"],
        latitude=[45.9, 45.91, 45.92],
        consommation_annuelle_totale_de_l_adresse_mwh=[40.43, 138.51, 1234.5],
    )
    trace = maps.address_traces(addresses)[0]
    assert trace["customdata"][:, 1].tolist() == [40.4, 139, 1230]
    # The hover format trims the zeros the rounding leaves (1 230, not 1 230,0).
    assert "%{customdata[1]:,.3~r} MWh" in trace["hovertemplate"]


def test_label_chart_uses_the_dpe_colours(data):
    fig = maps.label_chart(data.label_counts.loc["74010"], "Annecy")
    assert list(fig.data[0].y) == [1, 0, 2, 0, 0, 1, 0]
    assert fig.data[0].marker.color[0] == "#009C6D"
    assert "Annecy" in fig.layout.title.text


def test_figure_html_is_a_fragment_with_a_stable_id_and_french_png_name(data):
    fig = maps.scatter_map(_frame(data), "conso_total_mwh", 2023)
    html = maps.figure_html(fig, "carte-communes", "carte-consommation-74")
    assert "<html" not in html and "<body" not in html
    assert 'id="carte-communes"' in html
    assert "plotly.min.js" not in html and "cdn.plot.ly" not in html
    assert '"filename": "carte-consommation-74"' in html
    assert '"locale": "fr"' in html
    assert "Chambéry" in html and "\\u00e9" not in html
    # The script waits for plotly.js when it is loaded later (defer).
    assert "DOMContentLoaded" in html


def test_compact_arrays_writes_short_plain_lists():
    node = {
        "a": np.array([1.0, 2.0, np.nan]),
        "b": np.array([0.5, 1.25]),
        "c": np.array([[1.0, 0.5], [2.0, np.nan]]),
        "d": np.array(["x", "y"]),
        "e": np.array([40.4, 138.0, np.nan]),
    }
    assert json.dumps(maps.compact_arrays(node)) == json.dumps(
        {
            "a": [1, 2, None],
            "b": [0.5, 1.25],
            "c": [[1, 0.5], [2, None]],
            "d": ["x", "y"],
            "e": [40.4, 138, None],
        }
    )


def test_unescape_keeps_script_safety_escapes():
    text = r'"Cl\u00e9 \u0153 \u002f \u003c \u2028 \\u00e9"'
    assert maps._unescape_letters(text) == r'"Clé œ \u002f \u003c \u2028 \\u00e9"'


def large_frame(n: int = maps.FINE_COORDINATES_MAX_POINTS + 1) -> pd.DataFrame:
    """A national-size map frame (random values, no DPE), listed by code."""
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "code_insee": [f"{i:05d}" for i in range(n)],
            "nom_commune": [f"C{i}" for i in range(n)],
            "latitude": rng.uniform(43, 50, n),
            "longitude": rng.uniform(-4, 7, n),
            "nombre_de_logements": rng.integers(10, 1000, n).astype(float),
            "conso_total_mwh": rng.uniform(20, 5000, n),
            "conso_moyenne_mwh": rng.uniform(1, 9, n),
            "altitude": rng.uniform(0, 2000, n),
            "densite": rng.uniform(1, 9000, n),
            "part_passoires": np.nan,
            "etiquette_mediane_rang": np.nan,
            "nombre_dpe": np.nan,
        }
    )


def test_large_views_round_coordinates_and_list_points_by_position():
    frame = large_frame()
    trace = maps.scatter_map(frame, "conso_total_mwh", 2023).data[0]
    lat, lon = np.asarray(trace.lat), np.asarray(trace.lon)
    assert np.allclose(lat, np.round(lat, 2))
    assert np.all(np.diff(lat) >= 0)
    same_row = np.diff(lat) == 0
    assert np.all(np.diff(lon)[same_row] >= 0)
    # Every point keeps its own values: the order changed, not the pairing.
    first = frame.loc[frame["code_insee"] == trace.text[0][-6:-1]].iloc[0]
    assert lat[0] == round(first["latitude"], 2)
    assert trace.marker.size[0] == first["nombre_de_logements"]


def test_large_views_hover_every_field_with_coarser_rounding():
    frame = large_frame()
    frame.loc[:2, ["conso_moyenne_mwh", "altitude", "densite"]] = [
        [4.734, 1234.0, 8258.4],
        [12.34, 554.0, 45.4],
        [0.0473, 7.0, 4.4],
    ]
    frame = frame.iloc[np.argsort(frame["latitude"].to_numpy())]
    trace = maps.scatter_map(frame, "conso_total_mwh", 2023).data[0]
    template = trace.hovertemplate
    for words in ("Logements", "Consommation totale", "Moyenne par logement"):
        assert words in template
    assert "Altitude moyenne : %{customdata[1]:,.0f} m" in template
    # Density rides in hovertext: customdata rows keep two values.
    assert "Densité : %{hovertext:,.0f} hab./km²" in template
    assert "Moyenne par logement : %{customdata[0]:,.2~r} MWh" in template
    assert np.asarray(trace.customdata).shape == (len(frame), 2)
    rows = {text: i for i, text in enumerate(trace.text)}
    expected = {
        "C0 (00000)": ([4.7, 1230], 8300),
        "C1 (00001)": ([12, 550], 45),
        "C2 (00002)": ([0.047, 10], 4),
    }
    for label, (customdata, density) in expected.items():
        i = rows[label]
        assert list(trace.customdata[i]) == pytest.approx(customdata)
        assert trace.hovertext[i] == density


def test_a_coloured_mean_is_rounded_as_its_hover_in_large_views():
    frame = large_frame()
    frame.loc[0, "conso_moyenne_mwh"] = 4.734
    trace = maps.scatter_map(frame, "conso_moyenne_mwh", 2023).data[0]
    assert "Moyenne par logement : %{marker.color:,.2~r} MWh" in trace.hovertemplate
    assert "Consommation totale : %{customdata[0]:,.0f} MWh" in trace.hovertemplate
    row = list(trace.text).index("C0 (00000)")
    assert trace.marker.color[row] == pytest.approx(4.7)


def test_small_views_keep_the_hover_precision(data):
    frame = _frame(data)
    trace = maps.scatter_map(frame, "conso_total_mwh", 2023).data[0]
    assert "Moyenne par logement : %{customdata[0]:,.2f} MWh" in trace.hovertemplate
    assert "Densité : %{customdata[2]:,.0f} hab./km²" in trace.hovertemplate
    row = list(trace.text).index("Annecy (74010)")
    assert list(trace.customdata[row][:3]) == [3, 554, 8258]


def test_names_sort_without_accents(data):
    filters = maps.MapFilters(
        departements=(), annee=2023, tri="nom_commune", ordre="asc"
    )
    names = maps.table_rows(data, filters)["nom_commune"].tolist()
    assert names == ["Annecy", "Chambéry", "Chamonix-Mont-Blanc", "Thonon-les-Bains"]


@pytest.mark.parametrize(
    "query",
    ["annee=%C2%B2", "page=%C2%B2", "densite_min=%C2%B2", "departement=%C2%B2"],
    ids=["year", "page", "density", "departement"],
)
def test_unicode_digits_are_rejected_not_crashing(client, query):
    # "²".isdigit() is true but int("²") fails: found by tests/test_fuzz.py.
    for path in ("/ajax/communes.csv", "/ajax/map", "/ajax/communes/table"):
        assert client.get(f"{path}?{query}").status_code == 400
