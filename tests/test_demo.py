"""Tests for the synthetic demo-data generator in webapp.demo."""

from __future__ import annotations

import gzip
import hashlib
import re
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from webapp import demo
from webapp import rules

PROJECT_DIR = Path(__file__).resolve().parent.parent
RAW_DIR = PROJECT_DIR.parent / "shared" / "datasets" / "raw"
NEUF_SAMPLE = RAW_DIR / "ademe_dpe02neuf_73-74_sample.csv"
ENEDIS_SAMPLE = (
    RAW_DIR / "other_departments" / "enedis_conso_residentielle_adresses_lyon8_69123"
    "_2018-2023.csv"
)
LYON_EXISTANTS = (
    RAW_DIR / "other_departments" / "ademe_dpe_v2_existants_lyon1_69001_sample1000.csv"
)

#: DPE columns of the data contract in /work/brief.md, in order.
BRIEF_DPE_COLUMNS = [
    "numero_dpe",
    "numero_dpe_remplace",
    "date_etablissement_dpe",
    "date_reception_dpe",
    "date_derniere_modification_dpe",
    "etiquette_dpe",
    "etiquette_ges",
    "conso_5_usages_par_m2_ep",
    "conso_5_usages_par_m2_ef",
    "conso_5_usages_ep",
    "conso_5_usages_ef",
    "emission_ges_5_usages_par_m2",
    "emission_ges_5_usages",
    "cout_total_5_usages",
    "cout_chauffage",
    "surface_habitable_logement",
    "annee_construction",
    "type_batiment",
    "periode_construction",
    "type_energie_principale_chauffage",
    "type_generateur_chauffage_principal",
    "type_installation_chauffage",
    "qualite_isolation_enveloppe",
    "qualite_isolation_murs",
    "qualite_isolation_menuiseries",
    "qualite_isolation_plancher_bas",
    "logement_traversant",
    "protection_solaire_exterieure",
    "zone_climatique",
    "classe_altitude",
    "adresse_ban",
    "numero_voie_ban",
    "nom_rue_ban",
    "nom_commune_ban",
    "code_postal_ban",
    "code_insee_ban",
    "code_departement_ban",
    "identifiant_ban",
    "coordonnee_cartographique_x_ban",
    "coordonnee_cartographique_y_ban",
    "_geopoint",
    "source",
]

#: `dpe03existant` keys documented in open-data.md §2.5 (those the demo may use).
DOCUMENTED_DPE03_KEYS = {
    "numero_dpe",
    "date_etablissement_dpe",
    "date_visite_diagnostiqueur",
    "date_reception_dpe",
    "date_fin_validite_dpe",
    "date_derniere_modification_dpe",
    "numero_dpe_remplace",
    "etiquette_dpe",
    "etiquette_ges",
    "type_batiment",
    "annee_construction",
    "periode_construction",
    "type_installation_chauffage",
    "surface_habitable_logement",
    "identifiant_ban",
    "adresse_ban",
    "numero_voie_ban",
    "nom_rue_ban",
    "nom_commune_ban",
    "code_postal_ban",
    "code_insee_ban",
    "code_departement_ban",
    "coordonnee_cartographique_x_ban",
    "coordonnee_cartographique_y_ban",
    "zone_climatique",
    "classe_altitude",
    "_geopoint",
    "conso_5_usages_ep",
    "conso_5_usages_ef",
    "conso_5_usages_par_m2_ep",
    "conso_5_usages_par_m2_ef",
    "emission_ges_5_usages",
    "emission_ges_5_usages_par_m2",
    "cout_total_5_usages",
    "cout_chauffage",
    "type_energie_principale_chauffage",
    "type_generateur_chauffage_principal",
    "protection_solaire_exterieure",
    "logement_traversant",
    "qualite_isolation_enveloppe",
    "qualite_isolation_murs",
    "qualite_isolation_menuiseries",
    "qualite_isolation_plancher_bas",
}

#: Columns the demo shares with the real new-build sample header.
NEUF_SAMPLE_OVERLAP = {
    "code_insee_ban",
    "type_batiment",
    "type_energie_principale_chauffage",
    "numero_dpe",
    "date_reception_dpe",
    "cout_total_5_usages",
    "emission_ges_5_usages",
    "etiquette_ges",
    "cout_chauffage",
    "code_postal_ban",
    "etiquette_dpe",
    "surface_habitable_logement",
    "type_installation_chauffage",
}

SMALL_N = 2_000


@pytest.fixture(scope="module")
def communes() -> pd.DataFrame:
    return demo.load_communes()


@pytest.fixture(scope="module")
def dpe(communes) -> pd.DataFrame:
    return demo.generate_dpe(communes, n=SMALL_N, seed=7)


@pytest.fixture(scope="module")
def enedis(communes, dpe) -> pd.DataFrame:
    return demo.generate_enedis(communes, dpe, seed=7)


@pytest.fixture(scope="module")
def shipped_dpe() -> pd.DataFrame:
    return pd.read_csv(demo.DPE_PATH, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def shipped_enedis() -> pd.DataFrame:
    return pd.read_csv(demo.ENEDIS_PATH, dtype=str, keep_default_na=False)


def _bands(frame: pd.DataFrame, communes: pd.DataFrame) -> np.ndarray:
    altitude = demo.prepare_communes(communes).set_index("code_insee")["altitude"]
    return demo.altitude_band(altitude.loc[frame["code_insee_ban"]].to_numpy())


def test_same_seed_same_frames(communes, dpe, enedis):
    again = demo.generate_dpe(communes, n=SMALL_N, seed=7)
    pd.testing.assert_frame_equal(dpe, again)
    pd.testing.assert_frame_equal(enedis, demo.generate_enedis(communes, again, seed=7))


def test_other_seed_other_frames(communes, dpe):
    other = demo.generate_dpe(communes, n=SMALL_N, seed=8)
    assert not other["numero_dpe"].equals(dpe["numero_dpe"])
    assert not np.allclose(
        other["conso_5_usages_par_m2_ep"], dpe["conso_5_usages_par_m2_ep"]
    )


def test_gzip_bytes_are_reproducible(dpe, tmp_path):
    first = tmp_path / "a.csv.gz"
    second = tmp_path / "b.csv.gz"
    demo.write_csv_gz(dpe, first)
    demo.write_csv_gz(dpe, second)
    assert first.read_bytes() == second.read_bytes()
    # mtime 0 in the gzip header (bytes 4-7), so the date never changes the file.
    assert first.read_bytes()[4:8] == b"\x00\x00\x00\x00"
    back = pd.read_csv(first, dtype=str, keep_default_na=False)
    assert list(back.columns) == BRIEF_DPE_COLUMNS
    assert len(back) == SMALL_N


def test_scale_multiplies_rows(communes):
    assert len(demo.generate_dpe(communes, n=100, scale=3)) == 300
    with pytest.raises(ValueError, match="at least 1"):
        demo.generate_dpe(communes, n=10, scale=0)


def test_dpe_columns_follow_the_contract(dpe):
    assert list(dpe.columns) == BRIEF_DPE_COLUMNS
    assert set(dpe.columns) - {"source"} <= DOCUMENTED_DPE03_KEYS


def test_dpe_columns_match_real_ademe_spelling(dpe):
    if not NEUF_SAMPLE.exists():
        pytest.skip(f"real ADEME sample absent: {NEUF_SAMPLE}")
    header = set(pd.read_csv(NEUF_SAMPLE, nrows=0).columns)
    assert NEUF_SAMPLE_OVERLAP <= header
    assert NEUF_SAMPLE_OVERLAP <= set(dpe.columns)
    assert (header & set(dpe.columns)) == NEUF_SAMPLE_OVERLAP


def test_enedis_columns_match_real_sample(enedis):
    if not ENEDIS_SAMPLE.exists():
        pytest.skip(f"real Enedis sample absent: {ENEDIS_SAMPLE}")
    header = list(pd.read_csv(ENEDIS_SAMPLE, sep=";", nrows=0).columns)
    assert header[0].startswith("Unnamed")
    assert list(enedis.columns) == header[1:]
    assert list(demo.ENEDIS_COLUMNS) == header[1:]


def test_labels_match_rules(dpe):
    expected = rules.etiquette_dpe_array(
        dpe["conso_5_usages_par_m2_ep"],
        dpe["emission_ges_5_usages_par_m2"],
        dpe["surface_habitable_logement"],
        dpe["zone_climatique"],
        dpe["classe_altitude"],
        dpe["date_etablissement_dpe"],
    )
    assert list(dpe["etiquette_dpe"]) == list(expected)
    for row in dpe.sample(50, random_state=0).itertuples():
        ctx = {
            "surface": row.surface_habitable_logement,
            "zone_climatique": row.zone_climatique,
            "classe_altitude": row.classe_altitude,
            "date_dpe": row.date_etablissement_dpe,
        }
        assert row.etiquette_dpe == rules.etiquette_dpe(
            row.conso_5_usages_par_m2_ep, row.emission_ges_5_usages_par_m2, **ctx
        )
        assert row.etiquette_ges == rules.classe_ges(
            row.emission_ges_5_usages_par_m2, **ctx
        )


def test_shipped_labels_match_rules(shipped_dpe):
    expected = rules.etiquette_dpe_array(
        shipped_dpe["conso_5_usages_par_m2_ep"],
        shipped_dpe["emission_ges_5_usages_par_m2"],
        shipped_dpe["surface_habitable_logement"],
        shipped_dpe["zone_climatique"],
        shipped_dpe["classe_altitude"],
        shipped_dpe["date_etablissement_dpe"],
    )
    assert list(shipped_dpe["etiquette_dpe"]) == list(expected)


def test_shipped_files_are_the_generator_output(communes, tmp_path):
    assert demo.main(["--out-dir", str(tmp_path)]) == 0
    for shipped in (demo.DPE_PATH, demo.ENEDIS_PATH):
        fresh = tmp_path / shipped.name
        assert (
            hashlib.sha256(fresh.read_bytes()).hexdigest()
            == hashlib.sha256(shipped.read_bytes()).hexdigest()
        ), f"{shipped.name} differs: run .venv/bin/python -m webapp.demo"


def test_datasets_folder_under_10_mb():
    total = sum(p.stat().st_size for p in demo.DATASETS_DIR.rglob("*") if p.is_file())
    assert total < 10 * 1024 * 1024


@pytest.mark.parametrize(
    ("band", "median", "passoire"),
    list(zip(range(4), demo.BENCHMARK_MEDIAN_EP, demo.BENCHMARK_PASSOIRE, strict=True)),
    ids=list(demo.BAND_NAMES),
)
def test_shipped_medians_and_passoires_by_band(
    shipped_dpe, communes, band, median, passoire
):
    existing = shipped_dpe[shipped_dpe["source"] == "existant"]
    in_band = existing[_bands(existing, communes) == band]
    ep = in_band["conso_5_usages_par_m2_ep"].astype(float)
    assert len(in_band) > 500
    assert ep.median() == pytest.approx(median, rel=0.05)
    share = in_band["etiquette_dpe"].isin(rules.PASSOIRE_LABELS).mean()
    assert share == pytest.approx(passoire, abs=0.04)


def test_small_run_medians_are_realistic(dpe, communes):
    existing = dpe[dpe["source"] == "existant"]
    bands = _bands(existing, communes)
    medians = existing.groupby(bands)["conso_5_usages_par_m2_ep"].median()
    # Small samples: valleys below resorts, each band near its benchmark.
    assert medians[0] < medians[2]
    for band, target in enumerate(demo.BENCHMARK_MEDIAN_EP):
        assert medians[band] == pytest.approx(target, rel=0.15)


def test_band_shares_follow_real_counts(shipped_dpe, communes):
    shares = np.bincount(_bands(shipped_dpe, communes), minlength=4) / len(shipped_dpe)
    expected = np.array(demo.BENCHMARK_COUNTS) / sum(demo.BENCHMARK_COUNTS)
    np.testing.assert_allclose(shares, expected, atol=0.02)


def test_dpe_codes_are_real_communes(dpe, communes):
    reference = communes.set_index("code_insee")
    assert dpe["code_insee_ban"].isin(reference.index).all()
    assert (dpe["code_departement_ban"] == "74").all()
    postal = reference.loc[dpe["code_insee_ban"], "code_postal"].to_numpy()
    assert (dpe["code_postal_ban"].to_numpy() == postal).all()
    names = reference.loc[dpe["code_insee_ban"], "nom_standard"].to_numpy()
    assert (dpe["nom_commune_ban"].to_numpy() == names).all()


def test_identifiers(dpe):
    assert dpe["numero_dpe"].is_unique
    pattern = re.compile(r"^\d{2}74[EN]\d{7}[A-Z]$")
    assert dpe["numero_dpe"].map(lambda v: bool(pattern.match(v))).all()
    year = dpe["date_reception_dpe"].str[2:4]
    assert (dpe["numero_dpe"].str[:2] == year).all()
    kind = dpe["numero_dpe"].str[4].map({"E": "existant", "N": "neuf"})
    assert (kind == dpe["source"]).all()

    replaced = dpe["numero_dpe_remplace"].dropna()
    assert 0 < len(replaced) < 0.05 * len(dpe)
    assert not replaced.isin(dpe["numero_dpe"]).any()
    assert replaced.map(lambda v: bool(pattern.match(v))).all()

    ban = dpe["identifiant_ban"].str.extract(r"^(\d{5})_(\d{4})_(\d{5})$")
    assert ban.notna().all().all()
    assert (ban[0] == dpe["code_insee_ban"]).all()
    assert (ban[2].astype(int) == dpe["numero_voie_ban"].astype(int)).all()
    expected = (
        dpe["numero_voie_ban"]
        + " "
        + dpe["nom_rue_ban"]
        + " "
        + dpe["code_postal_ban"]
        + " "
        + dpe["nom_commune_ban"]
    )
    assert (dpe["adresse_ban"] == expected).all()


def test_buildings_group_apartments(dpe):
    per_address = dpe.groupby("identifiant_ban")["type_batiment"].agg(["size", "first"])
    flats = per_address[per_address["first"] != "maison"]
    assert (flats["size"] >= 2).mean() > 0.3
    houses = dpe[dpe["type_batiment"] == "maison"]
    assert houses["identifiant_ban"].is_unique
    # One address, one building: same construction year and street.
    shared = dpe.groupby("identifiant_ban")[["annee_construction", "nom_rue_ban"]]
    assert (shared.nunique() == 1).all().all()


def test_sources_and_types(dpe):
    neuf = dpe["source"] == "neuf"
    assert 0.05 < neuf.mean() < 0.16
    assert (dpe.loc[neuf, "annee_construction"] >= 2020).all()
    assert dpe.loc[neuf, "etiquette_dpe"].isin(["A", "B", "C", "D"]).all()
    assert set(dpe["type_batiment"]) == {"maison", "appartement", "immeuble"}
    flats = dpe[dpe["type_batiment"] == "appartement"]
    assert 0.1 < (flats["surface_habitable_logement"] < 40).mean() < 0.5
    houses = dpe[dpe["type_batiment"] == "maison"]
    assert houses["surface_habitable_logement"].between(45, 320).all()


def test_periods_match_construction_years(dpe):
    bounds = {name: (low, high) for name, low, high in demo.PERIODS}
    bounds[demo.PERIOD_AFTER_2021] = (2022, demo.REFERENCE_DATE.year)
    low = dpe["periode_construction"].map(lambda p: bounds[p][0])
    high = dpe["periode_construction"].map(lambda p: bounds[p][1])
    assert dpe["annee_construction"].between(low, high).all()
    dpe_year = dpe["date_etablissement_dpe"].str[:4].astype(int)
    assert (dpe["annee_construction"] <= dpe_year).all()


def test_dates_are_ordered_iso_strings(dpe):
    etab = pd.to_datetime(dpe["date_etablissement_dpe"], format="%Y-%m-%d")
    reception = pd.to_datetime(dpe["date_reception_dpe"], format="%Y-%m-%d")
    modified = pd.to_datetime(dpe["date_derniere_modification_dpe"], format="%Y-%m-%d")
    assert etab.min() >= pd.Timestamp(demo.FIRST_DPE_DATE)
    assert modified.max() <= pd.Timestamp(demo.REFERENCE_DATE)
    assert ((reception - etab).dt.days.between(0, 3)).all()
    assert (modified >= reception).all()
    # More DPEs in the last year than in the first (the market grows).
    assert (etab >= "2025-11-01").sum() > (etab < "2022-07-01").sum()


def test_enums_use_ademe_spellings(dpe):
    assert set(dpe["zone_climatique"]) == {"H1c"}
    assert set(dpe["classe_altitude"]) <= set(rules.CLASSES_ALTITUDE)
    qualities = set(demo.QUALITIES)
    for column in [c for c in dpe.columns if c.startswith("qualite_isolation_")]:
        values = dpe[column]
        assert set(values.dropna()) == qualities
        assert 0 < values.isna().mean() < 0.08
    assert set(dpe["type_installation_chauffage"]) <= {
        "individuel",
        "collectif",
        "mixte (collectif-individuel)",
    }
    assert set(dpe["type_energie_principale_chauffage"]) <= set(demo.EMISSION_FACTORS)
    for column in ("logement_traversant", "protection_solaire_exterieure"):
        assert set(dpe[column]) == {0.0, 1.0}


def test_altitude_class_follows_commune(dpe, communes):
    prepared = demo.prepare_communes(communes).set_index("code_insee")
    expected = prepared.loc[dpe["code_insee_ban"], "altitude"].map(
        rules.classe_altitude_from_altitude
    )
    assert (dpe["classe_altitude"].to_numpy() == expected.to_numpy()).all()


def test_missing_altitude_falls_back(communes):
    broken = communes.copy()
    annecy = broken["code_insee"] == "74010"
    broken.loc[annecy, "altitude_moyenne"] = 0.0
    prepared = demo.prepare_communes(broken).set_index("code_insee")
    row = communes[annecy].iloc[0]
    middle = (row["altitude_minimale"] + row["altitude_maximale"]) / 2
    assert prepared.at["74010", "altitude"] == pytest.approx(middle)
    broken.loc[annecy, ["altitude_minimale", "altitude_maximale"]] = 0.0
    prepared = demo.prepare_communes(broken).set_index("code_insee")
    assert 300 < prepared.at["74010", "altitude"] < 1500


def test_energy_consistency(dpe):
    ep = dpe["conso_5_usages_par_m2_ep"]
    ef = dpe["conso_5_usages_par_m2_ef"]
    surface = dpe["surface_habitable_logement"]
    assert (ep >= ef - 0.1).all()
    electric = dpe["type_energie_principale_chauffage"] == "Électricité"
    factor = np.where(
        pd.to_datetime(dpe["date_etablissement_dpe"]) >= "2026-01-01", 1.9, 2.3
    )
    np.testing.assert_allclose(ep[electric], (ef * factor)[electric], atol=0.3)
    np.testing.assert_allclose(
        dpe["emission_ges_5_usages_par_m2"][electric], (ef * 0.079)[electric], atol=0.1
    )
    np.testing.assert_allclose(dpe["conso_5_usages_ep"], ep * surface, rtol=1e-3)
    assert (dpe["cout_chauffage"] < dpe["cout_total_5_usages"]).all()
    assert (dpe["cout_total_5_usages"] > 0).all()


def test_lambert93_reference_points(dpe):
    x, y = demo.lambert93(np.array([46.5]), np.array([3.0]))
    assert (x[0], y[0]) == pytest.approx((700_000.0, 6_600_000.0), abs=1e-6)
    lat_lon = dpe["_geopoint"].str.split(",", expand=True).astype(float)
    x, y = demo.lambert93(lat_lon[0].to_numpy(), lat_lon[1].to_numpy())
    np.testing.assert_allclose(x, dpe["coordonnee_cartographique_x_ban"], atol=0.06)
    np.testing.assert_allclose(y, dpe["coordonnee_cartographique_y_ban"], atol=0.06)
    # Haute-Savoie lies roughly between x 900-1010 km and y 6470-6600 km.
    assert dpe["coordonnee_cartographique_x_ban"].between(900_000, 1_020_000).all()
    assert dpe["coordonnee_cartographique_y_ban"].between(6_460_000, 6_600_000).all()


def test_lambert93_matches_real_ban_coordinates():
    if not LYON_EXISTANTS.exists():
        pytest.skip(f"real ADEME Lyon sample absent: {LYON_EXISTANTS}")
    real = pd.read_csv(
        LYON_EXISTANTS,
        sep=";",
        usecols=[
            "_geopoint",
            "Coordonnée_cartographique_X_(BAN)",
            "Coordonnée_cartographique_Y_(BAN)",
        ],
    ).dropna()
    lat_lon = real["_geopoint"].str.split(",", expand=True).astype(float)
    x, y = demo.lambert93(lat_lon[0].to_numpy(), lat_lon[1].to_numpy())
    np.testing.assert_allclose(x, real["Coordonnée_cartographique_X_(BAN)"], atol=0.01)
    np.testing.assert_allclose(y, real["Coordonnée_cartographique_Y_(BAN)"], atol=0.01)


def test_enedis_rules(enedis, communes):
    assert (enedis["nombre_de_logements"] >= demo.ENEDIS_MIN_DWELLINGS).all()
    assert set(enedis["annee"]) == set(demo.ENEDIS_YEARS)
    assert enedis["code_commune"].isin(communes["code_insee"]).all()
    assert (enedis["segment_de_client"] == "RESIDENTIEL").all()
    assert enedis["code_iris"].str.fullmatch(r"\d{9}").all()
    assert (enedis["code_iris"].str[:5] == enedis["code_commune"]).all()
    assert enedis["tri_des_adresses"].dtype.kind == "i"
    per_commune_year = enedis.groupby(["code_commune", "annee"])[
        "consommation_annuelle_moyenne_de_la_commune_mwh"
    ].nunique()
    assert (per_commune_year == 1).all()
    per_site = enedis["consommation_annuelle_moyenne_par_site_de_l_adresse_mwh"]
    assert per_site.between(0.8, 12).all()
    assert 2 < per_site.median() < 5
    np.testing.assert_allclose(
        enedis["consommation_annuelle_totale_de_l_adresse_mwh"],
        per_site * enedis["nombre_de_logements"],
        rtol=2e-3,
    )
    assert enedis["libelle_de_voie"].str.fullmatch(r"[A-Z0-9 ]+").all()
    assert not enedis.duplicated(
        ["annee", "code_commune", "numero_de_voie", "libelle_de_voie", "type_de_voie"]
    ).any()


def test_shipped_enedis_size(shipped_enedis):
    addresses = shipped_enedis.drop_duplicates(
        ["code_commune", "numero_de_voie", "indice_de_repetition", "libelle_de_voie"]
    )
    assert 500 <= len(addresses) <= 800
    assert 2_500 <= len(shipped_enedis) <= 7 * 800


def _join_key(numero, libelle, commune) -> pd.Series:
    return (
        pd.Series(numero).astype(str)
        + "|"
        + pd.Series(libelle).map(demo.enedis_libelle)
        + "|"
        + pd.Series(commune).astype(str)
    )


def test_enedis_joins_the_dpe_after_normalisation(enedis, dpe):
    types, rests = demo._street_parts(dpe["nom_rue_ban"].to_numpy())
    dpe_keys = set(
        _join_key(dpe["numero_voie_ban"], rests, dpe["code_insee_ban"]).to_numpy()
    )
    dpe_streets = {k.split("|", 1)[1] for k in dpe_keys}
    addresses = enedis.drop_duplicates(
        ["code_commune", "numero_de_voie", "libelle_de_voie"]
    )
    keys = _join_key(
        addresses["numero_de_voie"],
        addresses["libelle_de_voie"],
        addresses["code_commune"],
    )
    full = keys.isin(dpe_keys)
    street = keys.map(lambda k: k.split("|", 1)[1]).isin(dpe_streets) & ~full
    assert full.mean() > 0.5
    assert street.sum() > 0
    assert (~full & ~street).sum() > 0
    # A raw join on the BAN spelling finds nothing: normalisation is needed.
    raw = set(dpe["nom_rue_ban"])
    assert not addresses["libelle_de_voie"].isin(raw).any()


def test_enedis_types_are_abbreviated_or_full(enedis):
    known = {spelling for _, _, pair in demo.STREET_TYPES for spelling in pair}
    assert set(enedis["type_de_voie"]) <= known
    assert {"AV", "CHE", "RTE"} & set(enedis["type_de_voie"])


def test_enedis_libelle():
    assert demo.enedis_libelle("du Mont-Blanc") == "DU MONT BLANC"
    assert demo.enedis_libelle("de l'Église") == "DE L EGLISE"


def test_random_dates_stay_in_range():
    rng = np.random.default_rng(0)
    days = demo._random_dates(rng, 1000, date(2021, 7, 1), date(2021, 7, 10), 1.2)
    assert days.min() >= np.datetime64("2021-07-01")
    assert days.max() <= np.datetime64("2021-07-10")


def test_gzip_header_of_shipped_files():
    for path in (demo.DPE_PATH, demo.ENEDIS_PATH):
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            assert handle.readline().strip()


def test_enedis_adresse_joins_its_parts(enedis):
    parts = (
        enedis["numero_de_voie"].astype(str)
        + enedis["indice_de_repetition"].map(
            lambda v: f" {v}" if isinstance(v, str) else ""
        )
        + " "
        + enedis["type_de_voie"]
        + " "
        + enedis["libelle_de_voie"]
    )
    assert (enedis["adresse"] == parts).all()
    assert not enedis["adresse"].str.contains("nan|None").any()
    assert enedis["indice_de_repetition"].dropna().isin(["B"]).all()


def test_enedis_without_collective_dpe_is_empty(communes, dpe):
    houses = dpe[dpe["type_batiment"] == "maison"]
    empty = demo.generate_enedis(communes, houses)
    assert empty.empty
    assert list(empty.columns) == list(demo.ENEDIS_COLUMNS)


def test_enedis_from_a_dpe_csv_read_back(communes, dpe, enedis, tmp_path):
    # A frame read back from CSV (numbers as int) gives the same Enedis rows.
    path = tmp_path / "dpe.csv.gz"
    demo.write_csv_gz(dpe, path)
    back = pd.read_csv(path, dtype={"code_insee_ban": str, "code_postal_ban": str})
    again = demo.generate_enedis(communes, back, seed=7)
    pd.testing.assert_frame_equal(again, enedis, check_dtype=False)
