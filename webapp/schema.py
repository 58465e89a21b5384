"""Column names of the three sources and the normalisers that map every known
spelling (current ADEME keys, legacy accented labels, Enedis hosts) to one schema."""

from __future__ import annotations

import re
import unicodedata

import pandas as pd

#: Bumped when the stored schema changes in a way readers must know about.
SCHEMA_VERSION = 1

DPE_DATE_COLUMNS = (
    "date_etablissement_dpe",
    "date_reception_dpe",
    "date_derniere_modification_dpe",
)
DPE_NUMERIC_COLUMNS = (
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
    "logement_traversant",
    "protection_solaire_exterieure",
    "coordonnee_cartographique_x_ban",
    "coordonnee_cartographique_y_ban",
)
DPE_CATEGORY_COLUMNS = (
    "etiquette_dpe",
    "etiquette_ges",
    "type_batiment",
    "periode_construction",
    "type_energie_principale_chauffage",
    "type_generateur_chauffage_principal",
    "type_installation_chauffage",
    "qualite_isolation_enveloppe",
    "qualite_isolation_murs",
    "qualite_isolation_menuiseries",
    "qualite_isolation_plancher_bas",
    "zone_climatique",
    "classe_altitude",
    "nom_commune_ban",
    "code_insee_ban",
    "code_postal_ban",
    "code_departement_ban",
    "source",
)
DPE_STRING_COLUMNS = (
    "numero_dpe",
    "numero_dpe_remplace",
    "adresse_ban",
    "numero_voie_ban",
    "nom_rue_ban",
    "identifiant_ban",
    "_geopoint",
)
#: Every column of the stored DPE table, in order (ADEME current keys + `source`).
DPE_COLUMNS = (
    "numero_dpe",
    "numero_dpe_remplace",
    *DPE_DATE_COLUMNS,
    "etiquette_dpe",
    "etiquette_ges",
    *DPE_NUMERIC_COLUMNS[:10],
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
)
DPE_REQUIRED = ("numero_dpe", "etiquette_dpe")

ENEDIS_COLUMNS = (
    "annee",
    "code_iris",
    "nom_iris",
    "numero_de_voie",
    "indice_de_repetition",
    "type_de_voie",
    "libelle_de_voie",
    "code_commune",
    "nom_commune",
    "segment_de_client",
    "nombre_de_logements",
    "consommation_annuelle_totale_de_l_adresse_mwh",
    "consommation_annuelle_moyenne_par_site_de_l_adresse_mwh",
    "consommation_annuelle_moyenne_de_la_commune_mwh",
    "adresse",
    "code_epci",
    "code_departement",
    "code_region",
    "tri_des_adresses",
)
ENEDIS_REQUIRED = (
    "annee",
    "code_commune",
    "nombre_de_logements",
    "consommation_annuelle_totale_de_l_adresse_mwh",
)
ENEDIS_NUMERIC_COLUMNS = (
    "nombre_de_logements",
    "consommation_annuelle_totale_de_l_adresse_mwh",
    "consommation_annuelle_moyenne_par_site_de_l_adresse_mwh",
    "consommation_annuelle_moyenne_de_la_commune_mwh",
)

ENEDIS_COMMUNES_COLUMNS = (
    "code_commune",
    "annee",
    "nombre_de_logements",
    "conso_total_mwh",
)

#: The communes columns the app uses; the others are kept as they are.
COMMUNES_REQUIRED = (
    "code_insee",
    "nom_standard",
    "latitude_centre",
    "longitude_centre",
)
COMMUNES_CODE_COLUMNS = (
    "code_insee",
    "dep_code",
    "reg_code",
    "epci_code",
    "code_postal",
    "codes_postaux",
    "canton_code",
    "zone_emploi",
    "code_insee_centre_zone_emploi",
    "code_unite_urbaine",
    "academie_code",
)
COMMUNES_NUMERIC_COLUMNS = (
    "population",
    "superficie_hectare",
    "superficie_km2",
    "densite",
    "altitude_moyenne",
    "altitude_minimale",
    "altitude_maximale",
    "latitude_mairie",
    "longitude_mairie",
    "latitude_centre",
    "longitude_centre",
    "grille_densite",
)
COMMUNES_ALTITUDE_COLUMNS = (
    "altitude_moyenne",
    "altitude_minimale",
    "altitude_maximale",
)

#: Codes padded with zeros to their official width.
CODE_WIDTHS = {
    "code_insee": 5,
    "code_insee_ban": 5,
    "code_commune": 5,
    "code_postal": 5,
    "code_postal_ban": 5,
    "dep_code": 2,
    "code_departement": 2,
    "code_departement_ban": 2,
    "reg_code": 2,
    "code_region": 2,
    "code_iris": 9,
}


def simplify(name: str) -> str:
    """Return a header reduced to lowercase ASCII words joined by underscores."""
    name = name.replace("\ufeff", "").strip()
    name = name.replace("²", "2").replace("°", "")
    ascii_name = (
        unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    )
    return re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_")


def fold(value: str) -> str:
    """Return a value lowercased without accents, for accent-insensitive matching."""
    text = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore")
    return text.decode("ascii").lower().strip()


# Legacy ADEME labels (dpe-v2-*), keyed by their simplified form.
_LEGACY_DPE = {
    "n_dpe": "numero_dpe",
    "ndpe": "numero_dpe",
    "n_dpe_remplace": "numero_dpe_remplace",
    "etiquette_dpe": "etiquette_dpe",
    "etiquette_ges": "etiquette_ges",
    "date_reception_dpe": "date_reception_dpe",
    "date_etablissement_dpe": "date_etablissement_dpe",
    "date_derniere_modification_dpe": "date_derniere_modification_dpe",
    "code_postal_ban": "code_postal_ban",
    "codepostal_ban": "code_postal_ban",
    "code_insee_ban": "code_insee_ban",
    "identifiant_ban": "identifiant_ban",
    "adresse_ban": "adresse_ban",
    "n_voie_ban": "numero_voie_ban",
    "nom_rue_ban": "nom_rue_ban",
    "nom_commune_ban": "nom_commune_ban",
    "n_departement_ban": "code_departement_ban",
    "coordonnee_cartographique_x_ban": "coordonnee_cartographique_x_ban",
    "coordonnee_cartographique_y_ban": "coordonnee_cartographique_y_ban",
    "conso_5_usages_par_m2_e_primaire": "conso_5_usages_par_m2_ep",
    "conso_5_usages_m2_e_finale": "conso_5_usages_par_m2_ef",
    "conso_5usages_m2e_finale": "conso_5_usages_par_m2_ef",
    "conso_5_usages_e_finale": "conso_5_usages_ef",
    "conso_5_usages_e_primaire": "conso_5_usages_ep",
    "emission_ges_5_usages": "emission_ges_5_usages",
    "emission_ges_5_usages_par_m2": "emission_ges_5_usages_par_m2",
    "cout_total_5_usages": "cout_total_5_usages",
    "cout_chauffage": "cout_chauffage",
    "annee_construction": "annee_construction",
    "periode_construction": "periode_construction",
    "type_batiment": "type_batiment",
    "surface_habitable_logement": "surface_habitable_logement",
    "classe_altitude": "classe_altitude",
    "zone_climatique": "zone_climatique",
    "qualite_isolation_enveloppe": "qualite_isolation_enveloppe",
    "qualite_isolation_murs": "qualite_isolation_murs",
    "qualite_isolation_menuiseries": "qualite_isolation_menuiseries",
    "qualite_isolation_plancher_bas": "qualite_isolation_plancher_bas",
    "hauteur_sous_plafond": "hauteur_sous_plafond",
    "type_energie_principale_chauffage": "type_energie_principale_chauffage",
    "type_installation_chauffage": "type_installation_chauffage",
    "type_generateur_n_1_installation_n_1": "type_generateur_chauffage_principal",
    "logement_traversant_0_1": "logement_traversant",
    "protection_solaire_exterieure_0_1": "protection_solaire_exterieure",
    "geopoint": "_geopoint",
}

# Enedis spellings: Data Fair drops the "_l_", CSV exports use labels.
_ENEDIS_ALIASES = {
    "consommation_annuelle_totale_de_ladresse_mwh": (
        "consommation_annuelle_totale_de_l_adresse_mwh"
    ),
    "consommation_annuelle_moyenne_par_site_de_ladresse_mwh": (
        "consommation_annuelle_moyenne_par_site_de_l_adresse_mwh"
    ),
    "consommation_annuelle_totale_de_l_adresse_mwh": (
        "consommation_annuelle_totale_de_l_adresse_mwh"
    ),
    "consommation_annuelle_moyenne_par_site_de_l_adresse_mwh": (
        "consommation_annuelle_moyenne_par_site_de_l_adresse_mwh"
    ),
    "consommation_annuelle_moyenne_de_la_commune_mwh": (
        "consommation_annuelle_moyenne_de_la_commune_mwh"
    ),
    "code_insee_de_la_commune": "code_commune",
    "numero_de_voie": "numero_de_voie",
    "nom_de_la_commune": "nom_commune",
}


def _is_index_column(name: str) -> bool:
    return name.strip() == "" or name.startswith("Unnamed: ")


def dpe_header(name: str) -> str:
    """Map one DPE header (current, legacy or simplified) to its current key."""
    key = simplify(name)
    if name.startswith("_"):
        return "_" + key
    return _LEGACY_DPE.get(key, key)


def enedis_header(name: str) -> str:
    """Map one Enedis header (either host, either spelling, CSV labels) to our key."""
    key = simplify(name)
    return _ENEDIS_ALIASES.get(key, key)


def rename_columns(frame: pd.DataFrame, mapper) -> pd.DataFrame:
    """Drop unnamed index columns and rename the others with `mapper`."""
    keep = [c for c in frame.columns if not _is_index_column(str(c))]
    frame = frame[keep]
    renamed = {c: mapper(str(c)) for c in keep}
    frame = frame.rename(columns=renamed)
    # Two spellings of one field in one file: keep the first non-empty.
    if frame.columns.duplicated().any():
        frame = frame.T.groupby(level=0, sort=False).first().T
    return frame


def map_distinct(series: pd.Series, transform) -> pd.Series:
    """Apply a vectorised `transform` to the distinct values of `series` only.

    Codes, dates and labels repeat a lot: transforming the distinct values then
    spreading them back is many times faster than a string method per row.
    Missing values stay missing and are not passed to `transform`.
    """
    # Identifiers are nearly all distinct: a sample tells, before hashing them.
    sample = series.iloc[:2000]
    if sample.nunique() * 2 > len(sample):
        return transform(series)
    codes, uniques = pd.factorize(series)
    if len(uniques) * 2 > len(series):
        return transform(series)
    values = transform(pd.Series(uniques, dtype=series.dtype)).array
    spread = values.take(codes, allow_fill=True)
    return pd.Series(spread, index=series.index, name=series.name)


def clean_code(series: pd.Series, width: int | None) -> pd.Series:
    """Return codes as strings with their leading zeros ('69.0' -> '69')."""
    return map_distinct(series, lambda values: _clean_code(values, width))


def _clean_code(series: pd.Series, width: int | None) -> pd.Series:
    text = series.astype("string").str.strip()
    text = text.str.replace(r"\.0+$", "", regex=True)
    text = text.mask(text.isin(["", "nan", "None", "<NA>"]))
    if width:
        numeric = text.str.fullmatch(r"\d+").fillna(False)
        text = text.mask(numeric & (text.str.len() < width), text.str.zfill(width))
    return text


def strip_text(series: pd.Series) -> pd.Series:
    """Return values as strings without surrounding blanks."""
    return map_distinct(series, _strip_text)


#: A blank after a NUL: values are joined by NUL to look for blanks at once.
_BLANK_AFTER_NUL = re.compile(r"\x00\s")


def _strip_text(values: pd.Series) -> pd.Series:
    text = values.astype("string")
    # Identifiers from an API seldom carry blanks: one search over the joined
    # values (forwards for leading blanks, backwards for trailing ones) costs
    # far less than a strip per value. `\s` is what `str.strip` removes.
    joined = "\x00" + "\x00".join(text.dropna().tolist()) + "\x00"
    if _BLANK_AFTER_NUL.search(joined) or _BLANK_AFTER_NUL.search(joined[::-1]):
        return text.str.strip()
    return text


def parse_dates(series: pd.Series) -> pd.Series:
    """Parse ISO or dd/mm/yyyy dates; unparseable values become NaT."""
    if pd.api.types.is_datetime64_any_dtype(series):
        return series.dt.tz_localize(None) if series.dt.tz else series
    parsed = map_distinct(series, _parse_dates)
    return parsed.astype("datetime64[ns]")


def _parse_dates(series: pd.Series) -> pd.Series:
    text = series.astype("string").str.strip()
    french = text.str.match(r"^\d{1,2}/\d{1,2}/\d{4}").fillna(False)
    parsed = pd.Series(pd.NaT, index=series.index, dtype="datetime64[ns]")
    if french.any():
        parsed[french] = pd.to_datetime(
            text[french].str.slice(0, 10), format="%d/%m/%Y", errors="coerce"
        )
    iso = ~french & text.notna()
    if iso.any():
        values = pd.to_datetime(
            text[iso].str.slice(0, 10), format="%Y-%m-%d", errors="coerce"
        )
        parsed[iso] = values
    return parsed


def to_number(series: pd.Series) -> pd.Series:
    """Parse numbers, accepting a French decimal comma."""
    if pd.api.types.is_numeric_dtype(series):
        return series.astype("float64")
    return map_distinct(series, _to_number).astype("float64")


def _to_number(series: pd.Series) -> pd.Series:
    text = series.astype("string").str.strip().str.replace(",", ".", regex=False)
    return pd.to_numeric(text, errors="coerce").astype("float64")


def year_from(series: pd.Series) -> pd.Series:
    """Return a year as an integer from 2023, 2023.0, '2023' or '2023-01-01'."""
    text = series.astype("string").str.strip().str.slice(0, 4)
    return pd.to_numeric(text, errors="coerce").astype("Int64")
