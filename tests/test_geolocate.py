"""Geolocation of Enedis addresses on crafted addresses: precision and position."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from webapp import geolocate


def communes() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "code_insee": ["74010", "74056"],
            "latitude_centre": [45.9, 45.92],
            "longitude_centre": [6.12, 6.87],
        }
    )


def dpe() -> pd.DataFrame:
    """BAN addresses of Annecy: two DPE at 12 bis avenue, one at 3 rue, no point."""
    return pd.DataFrame(
        {
            "adresse_ban": [
                "12 bis Avenue du Général-de-Gaulle 74000 Annecy",
                "12 bis Avenue du Général-de-Gaulle 74000 Annecy",
                "3 Rue Sainte-Claire 74000 Annecy",
                "5 Rue Sainte-Claire 74000 Annecy",
                "8 Chemin des Fleurs 74000 Annecy",
            ],
            "numero_voie_ban": ["12", "12", "3", "5", "8"],
            "nom_rue_ban": [
                "Avenue du Général-de-Gaulle",
                "Avenue du Général-de-Gaulle",
                "Rue Sainte-Claire",
                "Rue Sainte-Claire",
                "Chemin des Fleurs",
            ],
            "code_insee_ban": pd.Series(["74010"] * 5, dtype="string"),
            "_geopoint": [
                "45.9000,6.1000",
                "45.9002,6.1002",
                "45.8990,6.1200",
                "45.8994,6.1210",
                None,
            ],
        }
    )


def enedis() -> pd.DataFrame:
    """Crafted Enedis spellings of those streets, plus unknown ones."""
    rows = [
        # Exact address: abbreviated type, repetition index 'B', general abbreviated.
        ("12", "B", "AV", "DU GAL DE GAULLE", "74010"),
        # Same street, number without DPE: street centre.
        ("40", None, "R", "STE CLAIRE", "74010"),
        # Street unknown to the DPE: commune centre.
        ("7", None, "IMP", "DES LILAS", "74010"),
        # Street whose only DPE has no BAN point: commune centre.
        ("8", None, "CHE", "DES FLEURS", "74010"),
        # Same number, other suffix: not the same address, street centre.
        ("3", "T", "RUE", "SAINTE CLAIRE", "74010"),
        # Commune missing from the reference: no position.
        ("1", None, "RUE", "HAUTE", "99999"),
    ]
    frame = pd.DataFrame(
        rows,
        columns=[
            "numero_de_voie",
            "indice_de_repetition",
            "type_de_voie",
            "libelle_de_voie",
            "code_commune",
        ],
    )
    frame["adresse"] = "ignored"
    frame["nombre_de_logements"] = [10, 20, 30, 40, 50, 60]
    frame["consommation_annuelle_totale_de_l_adresse_mwh"] = [25.0] * 6
    frame["consommation_annuelle_moyenne_par_site_de_l_adresse_mwh"] = [2.5] * 6
    frame["annee"] = 2023
    return frame


@pytest.fixture
def located() -> geolocate.Geolocation:
    return geolocate.geolocate(enedis(), dpe(), communes())


def test_precision_of_each_crafted_address(located):
    assert located.points["precision"].tolist() == [
        "adresse",
        "rue",
        "commune",
        "commune",
        "rue",
        "aucune",
    ]


def test_positions_follow_the_precision(located):
    points = located.points
    # Mean of the two DPE at that address.
    assert points.loc[0, "latitude"] == pytest.approx(45.9001)
    assert points.loc[0, "longitude"] == pytest.approx(6.1001)
    # Median of the DPE points of the street.
    assert points.loc[1, "latitude"] == pytest.approx(45.8992)
    # Commune centre.
    assert (points.loc[2, "latitude"], points.loc[2, "longitude"]) == (45.9, 6.12)
    assert np.isnan(points.loc[5, "latitude"])


def test_match_rates(located):
    assert located.addresses == 6
    assert located.address_counts == {"adresse": 1, "rue": 2, "commune": 2, "aucune": 1}
    assert located.address_rates["rue"] == pytest.approx(2 / 6)
    assert located.dwelling_rates["aucune"] == pytest.approx(60 / 210)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("AV DU GAL DE GAULLE", "AVENUE GENERAL GAULLE"),
        ("Avenue du Général-de-Gaulle", "AVENUE GENERAL GAULLE"),
        ("CHE DE L'ÉGLISE", "CHEMIN EGLISE"),
        ("Rte d'Annecy", "ROUTE ANNECY"),
        ("nan", ""),
    ],
)
def test_normalise_street(raw, expected):
    assert geolocate.normalise_street(raw) == expected


@pytest.mark.parametrize(
    ("number", "suffix", "expected"),
    [("12", "B", "12 BIS"), ("012", None, "12"), ("7", "ter", "7 TER"), ("", None, "")],
)
def test_normalise_number(number, suffix, expected):
    assert geolocate.normalise_number(number, suffix) == expected


def test_split_address_reads_the_number_suffix():
    assert geolocate.split_address("12 bis Rue du Pont") == ("12 BIS", "RUE PONT")
    assert geolocate.split_address("94 nan RUE DU PONT") == ("94", "RUE PONT")


def test_enedis_keys_fall_back_to_the_full_address():
    frame = enedis().iloc[:1].copy()
    frame[["numero_de_voie", "type_de_voie", "libelle_de_voie"]] = None
    frame["indice_de_repetition"] = None
    frame["adresse"] = "12 B AV DU GAL DE GAULLE"
    keys = geolocate.enedis_address_keys(frame)
    assert keys.loc[0, "numero"] == "12 BIS"
    assert keys.loc[0, "rue"] == "AVENUE GENERAL GAULLE"


def test_commune_addresses_pick_the_year_and_rebuild_labels():
    rows = pd.concat([enedis().assign(annee=2022), enedis()], ignore_index=True)
    rows["indice_de_repetition"] = rows["indice_de_repetition"].astype("string")
    for column in ("numero_de_voie", "type_de_voie", "libelle_de_voie"):
        rows[column] = rows[column].astype("string")
    result = geolocate.geolocate(rows, dpe(), communes())
    latest = geolocate.commune_addresses(result, "74010", None)
    assert set(latest["annee"]) == {2023}
    assert latest["adresse"].iloc[0] == "12 B AV DU GAL DE GAULLE"
    assert len(geolocate.commune_addresses(result, "74010", 2022)) == 5
    assert geolocate.commune_addresses(result, "00000", None).empty
