"""Location resolution, address suggestions and known DPE."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import make_app
from webapp import location as loc
from webapp import rules


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """One app for the module: these tests only read the data."""
    return make_app(tmp_path_factory.mktemp("volume"))


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield


def _communes() -> pd.DataFrame:
    """Three communes of 74: low, middle and high, one without DPE."""
    return pd.DataFrame(
        {
            "code_insee": ["74010", "74056", "74999"],
            "nom_standard": ["Annecy", "Chamonix-Mont-Blanc", "Sans-DPE"],
            "dep_code": ["74", "74", "74"],
            "code_postal": ["74000", "74400", "74998"],
            "codes_postaux": ["74000, 74370", "74400", "74998"],
            "population": [130000, 8600, 10],
            "altitude_moyenne": [450.0, 1035.0, np.nan],
            "altitude_minimale": [400.0, 995.0, 300.0],
            "altitude_maximale": [500.0, 4810.0, 500.0],
            "densite": [2000.0, 75.0, 5.0],
            "latitude_centre": [45.90, 45.92, 46.30],
            "longitude_centre": [6.12, 6.87, 6.50],
        }
    )


def _dpe() -> pd.DataFrame:
    """Four DPE: the altitude class of Annecy's DPE disagrees with its altitude."""
    return pd.DataFrame(
        {
            "numero_dpe": ["A1", "A2", "A3", "C1"],
            "adresse_ban": [
                "1 Rue Royale 74000 Annecy",
                "1 Rue Royale 74000 Annecy",
                "5 Rue Royale 74000 Annecy",
                "2 Place du Mont-Blanc 74400 Chamonix-Mont-Blanc",
            ],
            "nom_rue_ban": ["Rue Royale"] * 3 + ["Place du Mont-Blanc"],
            "nom_commune_ban": ["Annecy"] * 3 + ["Chamonix-Mont-Blanc"],
            "code_postal_ban": ["74000"] * 3 + ["74400"],
            "code_insee_ban": ["74010"] * 3 + ["74056"],
            "zone_climatique": ["H1c", "H1c", "H1c", "H1b"],
            "classe_altitude": ["400-800m", "400-800m", "inférieur à 400m", None],
            "conso_5_usages_par_m2_ep": [100.0, 200.0, 300.0, 250.0],
        }
    )


@pytest.fixture(scope="module")
def tiny():
    return loc.build_index(_communes(), _dpe())


def test_fold_removes_accents_and_punctuation():
    assert loc.fold("Évian-les-Bains (74500)") == "evian les bains 74500"
    assert loc.fold(None) == ""


def test_commune_features_use_the_dpe_modes(tiny):
    annecy = loc.resolve({"code_insee": "74010"}, tiny)

    # The DPE mode wins over the class the mean altitude (450 m) would give.
    assert annecy.classe_altitude == "400-800m"
    assert annecy.zone_climatique == "H1c"
    assert annecy.altitude == 450.0
    assert annecy.densite == 2000.0
    assert annecy.source == "code_insee"


def test_commune_without_dpe_falls_back_to_altitude_and_department_zone(tiny):
    place = loc.resolve({"code_insee": "74999"}, tiny)

    # Missing mean altitude: (300 + 500) / 2.
    assert place.altitude == 400.0
    assert place.classe_altitude == rules.classe_altitude_from_altitude(400.0)
    assert place.zone_climatique == "H1c"


def test_commune_with_dpe_but_no_altitude_class_uses_its_altitude(tiny):
    place = loc.resolve({"code_insee": "74056"}, tiny)

    assert place.zone_climatique == "H1b"
    assert place.classe_altitude == "supérieur à 800m"


def test_postal_code_picks_the_most_populous_commune(tiny):
    place = loc.resolve({"code_postal": "74370"}, tiny)

    assert place.code_insee == "74010"
    assert place.source == "code_postal"


def test_coordinates_pick_the_nearest_commune_centre(tiny):
    place = loc.resolve({"latitude": "45,93", "longitude": 6.85}, tiny)

    assert place.code_insee == "74056"
    assert place.source == "coordonnees"


def test_explicit_zone_and_altitude_need_no_commune(tiny):
    place = loc.resolve({"zone_climatique": "h1c", "altitude": "1200"}, tiny)

    assert place.code_insee is None
    assert place.classe_altitude == "supérieur à 800m"
    assert place.densite is None
    assert place.source == "explicite"


def test_explicit_values_override_the_commune(tiny):
    place = loc.resolve(
        {"code_insee": "74010", "zone_climatique": "H2d", "altitude": "900"}, tiny
    )

    assert place.zone_climatique == "H2d"
    assert place.altitude == 900.0
    # An edited altitude re-derives the class.
    assert place.classe_altitude == "supérieur à 800m"


@pytest.mark.parametrize(
    ("inputs", "field", "expected"),
    [
        ({"code_insee": "75056"}, "code_insee", "Haute-Savoie"),
        ({"code_postal": "75001"}, "code_postal", "Haute-Savoie"),
        ({"latitude": "48.85", "longitude": "2.35"}, "latitude", "km"),
        ({"latitude": "45.9"}, "longitude", "latitude et longitude"),
        ({"latitude": "95", "longitude": "6"}, "latitude", "−90 à 90"),
        ({"latitude": "nord", "longitude": "6"}, "latitude", "nombre"),
        ({"zone_climatique": "H9", "altitude": "500"}, "zone_climatique", "H1a"),
        ({"zone_climatique": "H1c", "altitude": "9000"}, "altitude", "4 810"),
        (
            {"zone_climatique": "H1c", "classe_altitude": "haut"},
            "classe_altitude",
            "400-800m",
        ),
        ({"zone_climatique": "H1c"}, "altitude", "Altitude manquante"),
        ({}, "code_insee", "code_postal"),
    ],
    ids=[
        "insee",
        "postal",
        "far-point",
        "lonely-latitude",
        "latitude-range",
        "latitude-text",
        "zone",
        "altitude-range",
        "classe",
        "no-altitude",
        "nothing",
    ],
)
def test_errors_name_the_field_in_french(tiny, inputs, field, expected):
    with pytest.raises(loc.LocationError) as caught:
        loc.resolve(inputs, tiny)

    assert expected in caught.value.fields[field]


def test_suggest_lists_communes_then_addresses(tiny):
    results = loc.suggest("annecy", index=tiny)

    assert results[0]["kind"] == "commune"
    assert results[0]["code_insee"] == "74010"
    addresses = [r for r in results if r["kind"] == "adresse"]
    # The address with two DPE comes first.
    assert addresses[0]["adresse"] == "1 Rue Royale 74000 Annecy"
    assert addresses[0]["dpe_count"] == 2


def test_suggest_matches_every_word_accent_insensitively(tiny):
    results = loc.suggest("mont blanc place", index=tiny)

    assert [r["label"] for r in results if r["kind"] == "adresse"] == [
        "2 Place du Mont-Blanc 74400 Chamonix-Mont-Blanc"
    ]
    assert loc.suggest("a", index=tiny) == []
    assert loc.suggest("zzzz", index=tiny) == []


def test_suggest_on_the_store_data(ctx):
    results = loc.suggest("annecy")

    assert results and results[0]["nom_commune"] == "Annecy"
    assert len(results) <= loc.SUGGEST_LIMIT


def test_known_dpe_at_the_address_then_the_street(ctx):
    index = loc.get_index()
    address = index.addresses.sort_values("dpe_count").iloc[-1]

    scope, rows = loc.known_dpe(address["adresse_ban"])
    assert scope == "adresse"
    assert len(rows) == min(address["dpe_count"], loc.KNOWN_DPE_LIMIT)
    assert {r["adresse_ban"] for r in rows} == {address["adresse_ban"]}
    dates = [r["date_etablissement_dpe"] for r in rows]
    assert dates == sorted(dates, reverse=True)

    other = f"99999 {address['nom_rue_ban']} {address['code_postal_ban']}"
    scope, rows = loc.known_dpe(other, address["code_insee_ban"])
    assert scope == "rue"
    assert rows and {r["nom_rue_ban"] for r in rows} == {address["nom_rue_ban"]}

    assert loc.known_dpe("") == (None, [])


def test_commune_percentile(tiny, ctx):
    share, count = loc.commune_percentile("74010", 200.0, tiny)

    # One of three values below, one equal (counted half).
    assert count == 3
    assert share == pytest.approx(0.5)
    assert loc.commune_percentile("74999", 100.0, tiny) == (None, 0)
    assert loc.commune_percentile(None, 100.0, tiny) == (None, 0)


def test_index_is_computed_once_per_load(app):
    with app.app_context():
        store = app.extensions["store"]
        assert store.aggregates[loc.INDEX_NAME] is loc.get_index()
