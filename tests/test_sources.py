"""Source clients on tiny frames and on the real samples of ../shared/datasets/raw."""

from __future__ import annotations

import pandas as pd
import pytest

from tests import fake_upstream
from tests.conftest import make_app
from webapp import schema
from webapp.sources import ademe
from webapp.sources import datafair
from webapp.sources import datagouv
from webapp.sources.http import Client
from webapp.sources.http import HttpSettings
from webapp.sources.http import SourceError

demo_payloads = fake_upstream.demo_payloads
upstream = fake_upstream.upstream


def run(app, *args):
    return app.test_cli_runner().invoke(args=["data", "refresh", *args])


def tiny_dpe(rows: list[tuple[str, str | None, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        rows, columns=["numero_dpe", "numero_dpe_remplace", "etiquette_dpe"]
    )


def test_merge_upserts_and_drops_the_replaced():
    current = tiny_dpe([("A", None, "D"), ("B", None, "E"), ("C", None, "F")])
    changes = tiny_dpe([("B", None, "C"), ("N", "C", "B")])

    merged, counts = ademe.merge(current, changes)

    assert dict(zip(merged["numero_dpe"], merged["etiquette_dpe"], strict=True)) == {
        "A": "D",
        "B": "C",
        "N": "B",
    }
    assert counts == {"added": 1, "updated": 1, "removed": 1}


def test_check_rows_keeps_scalar_objects_and_reports_new_fields():
    rows = [
        {"numero_dpe": "1", "etiquette_dpe": "A", "nouveau": 3, "_score": 1},
        "not an object",
        {"numero_dpe": ["1"], "etiquette_dpe": "B"},
    ]

    kept, rejected, extra = datafair.check_rows(rows, ["numero_dpe", "etiquette_dpe"])

    assert kept == [{"numero_dpe": "1", "etiquette_dpe": "A"}]
    assert rejected == {"row is not a JSON object": 1, "non-scalar field value": 1}
    assert extra == {"nouveau"}


def test_select_follows_the_published_schema():
    http = Client("ademe", HttpSettings())
    keys = {"numero_dpe", "etiquette_dpe", "date_reception_dpe", "code_insee_ban"}

    select = ademe.plan_select(http, keys, "http://example/schema")

    assert select == [f for f in ademe.FIELDS if f in keys]


def test_udata_resolution_prefers_the_full_csv(upstream):
    http = Client("communes", HttpSettings(min_interval=0))

    url = datagouv.resolve(http, upstream.config()["DATAGOUV_API_URL"])

    assert url.endswith(f"/{upstream.resource_stamp}/communes-france-2025.csv")


# ------------------------------------------------------------------ real samples


def test_real_dpe02neuf_sample_through_the_api(volume, upstream, shared_raw):
    rows = fake_upstream.real_neuf_rows(shared_raw)
    keys = list(upstream.ademe["dpe03existant"].keys)
    upstream.set_ademe({"dpe02neuf": rows})
    # No existing-dwelling rows: only the published schema.
    upstream.ademe["dpe03existant"] = fake_upstream.Dataset([], keys=keys)
    app = make_app(volume, **upstream.config(ADEME_PAGE_SIZE=1000))

    result = run(app, "--source", "ademe")

    assert result.exit_code == 0, result.output
    # The sample lacks per-m² values: the select follows the published schema.
    count, first, *_ = upstream.requests_to("dpe02neuf/lines")
    assert count["size"] == "0"
    select = first["select"].split(",")
    assert "conso_5_usages_par_m2_ep" not in select
    assert "numero_dpe" in select and "cout_total_5_usages" in select

    frame = pd.DataFrame(rows)
    frame = frame[frame["code_departement_ban"] == "74"]
    frame = frame[frame["etiquette_dpe"].isin(list("ABCDEFG"))]
    surface = pd.to_numeric(frame["surface_habitable_logement"])
    frame = frame[surface.isna() | surface.between(5, 1000)]
    stored = app.extensions["store"].dpe
    assert set(stored["numero_dpe"]) == set(frame["numero_dpe"])
    assert (stored["source"] == "neuf").all()
    # dd/mm/yyyy dates became real dates within the sample's range.
    dates = stored["date_reception_dpe"]
    assert dates.min() >= pd.Timestamp("2021-07-01")
    assert dates.max() <= pd.Timestamp("2025-10-31")
    assert "ademe: 16 rejected: duplicate numero_dpe" in result.output
    assert "ademe: 36 rejected: surface outside 5-1000 m2" in result.output


@pytest.mark.parametrize("host", ["data-fair", "ods"])
def test_real_enedis_lyon_sample_on_both_hosts(volume, upstream, shared_raw, host):
    rows = fake_upstream.real_enedis_rows(shared_raw)
    upstream.set_enedis(rows)
    if host == "ods":
        upstream.down.add(fake_upstream.ENEDIS_PREFIX)
    app = make_app(
        volume, **upstream.config(REFRESH_DEPARTEMENT="69", ENEDIS_PAGE_SIZE=2000)
    )

    result = run(app, "--source", "enedis")

    assert result.exit_code == 0, result.output
    store = app.extensions["store"]
    assert len(store.enedis) == len(rows) == 9312
    assert sorted(store.enedis["annee"].unique()) == list(range(2018, 2024))
    assert set(store.enedis["code_commune"]) == {"69123"}
    assert store.read_manifest()["datasets"]["enedis"]["host"] == host

    source = pd.DataFrame(rows)
    total = source["consommation_annuelle_totale_de_l_adresse_mwh"].sum()
    national = store.enedis_communes
    assert national["conso_total_mwh"].sum() == pytest.approx(total)
    assert national["nombre_de_logements"].sum() == source["nombre_de_logements"].sum()
    assert list(national.columns) == list(schema.ENEDIS_COMMUNES_COLUMNS)


def test_real_national_communes_table(volume, upstream, shared_raw):
    national = fake_upstream.real_national_communes(shared_raw)
    upstream.communes = fake_upstream.communes_csv(national, index_column=True)
    app = make_app(volume, **upstream.config(COMMUNES_MIN_ROWS=30_000))

    result = run(app, "--source", "communes")

    assert result.exit_code == 0, result.output
    store = app.extensions["store"]
    assert len(store.communes) == 34_935
    assert len(store.communes_74) == 279
    assert "Unnamed: 0" not in store.communes.columns
    cusy = store.communes.set_index("code_insee").loc["74097"]  # Cusy
    assert pd.isna(cusy["altitude_minimale"]) and pd.isna(cusy["altitude_maximale"])
    assert store.communes["code_insee"].str.fullmatch(r"\w{5}").all()


def test_a_table_without_enough_communes_is_refused(volume, upstream):
    app = make_app(volume, **upstream.config(COMMUNES_MIN_ROWS=30_000))

    result = run(app, "--source", "communes")

    assert result.exit_code == 1
    assert "only 279 communes (at least 30000 expected)" in result.output
    assert app.extensions["store"].sources["communes"]["origin"] == "reference"


# --------------------------------------------------------------------------- CSV pages

FIELDS = [
    {"key": "numero_dpe", "x-originalName": "numero_dpe", "title": "N° DPE"},
    {"key": "code_insee_ban", "title": "Code INSEE (BAN)"},
    {"key": "surface_habitable_logement", "title": "Surface habitable"},
    {"key": "etiquette_dpe", "title": "Étiquette"},
    {"key": "etiquette_ges", "title": "Étiquette"},
]
SELECT = ["numero_dpe", "code_insee_ban", "surface_habitable_logement"]


def test_csv_headers_map_keys_original_names_and_unique_titles():
    headers = datafair.csv_header_names(FIELDS, SELECT)

    assert headers["N° DPE"] == headers["numero_dpe"] == "numero_dpe"
    assert headers["Code INSEE (BAN)"] == "code_insee_ban"
    # Two fields share the title "Étiquette", and neither is selected anyway.
    assert "Étiquette" not in headers and "etiquette_dpe" not in headers


def test_csv_page_keeps_code_zeros_and_parses_numbers():
    headers = datafair.csv_header_names(FIELDS, SELECT)
    # With a BOM, as spreadsheet-minded servers write.
    body = (
        "\ufeff"
        '"N° DPE","Code INSEE (BAN)","Surface habitable","Autre"\n'
        '2374E1,01004,"45.5",x\n'
        "2374E2,74010,,y\n"
    ).encode()

    frame = datafair.csv_page_frame(body, SELECT, headers, numeric={SELECT[2]})

    assert list(frame.columns) == SELECT
    assert frame["code_insee_ban"].tolist() == ["01004", "74010"]
    assert frame["surface_habitable_logement"].iloc[0] == 45.5
    assert pd.isna(frame["surface_habitable_logement"].iloc[1])


def test_csv_page_without_a_selected_field_is_a_header_mismatch():
    headers = datafair.csv_header_names(FIELDS, SELECT)
    body = b'"N\xc2\xb0 DPE","Code INSEE (BAN)"\n2374E1,01004\n'

    with pytest.raises(datafair.CsvHeaderMismatch, match="surface_habitable"):
        datafair.csv_page_frame(body, SELECT, headers)


class _CsvAnswer:
    def __init__(self, body: bytes, next_url: str | None = None, kind="text/csv"):
        self.body, self.url = body, "http://example/lines"
        self.headers = {"Content-Type": kind}
        self.links = {"next": {"url": next_url}} if next_url else {}


def _client_serving(answers: list[_CsvAnswer]) -> Client:
    client = Client("ademe", HttpSettings())
    queue = list(answers)

    def get_csv_body(url, params=None):
        answer = queue.pop(0)
        return answer, answer.body

    client.get_csv_body = get_csv_body
    return client


def _csv_body(rows: int) -> bytes:
    lines = ["numero_dpe,code_insee_ban,surface_habitable_logement"]
    lines += [f"2374E{i},74010,50" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def test_csv_pages_follow_the_link_header_until_a_short_page():
    client = _client_serving(
        [
            _CsvAnswer(_csv_body(3), "http://example/lines?after=3"),
            _CsvAnswer(_csv_body(2)),
        ]
    )
    headers = datafair.csv_header_names(FIELDS, SELECT)

    pages = list(
        datafair.iter_csv_lines(
            client, "http://example", SELECT, headers, {"size": "3"}
        )
    )

    assert [len(page.rows) for page in pages] == [3, 2]
    assert pages[0].next == "http://example/lines?after=3" and pages[1].next is None


@pytest.mark.parametrize(
    "answer, reason",
    [
        (_CsvAnswer(_csv_body(2), "http://example/lines?after=2"), "truncated page"),
        (_CsvAnswer(_csv_body(3) + b"2374E9,74010,50,extra\n"), "malformed CSV"),
        (_CsvAnswer(_csv_body(4)), "above size=3"),
        (_CsvAnswer(b"<p>x</p>", kind="text/plain"), "unexpected content type"),
    ],
)
def test_bad_csv_pages_fail_with_a_reason(answer, reason):
    client = _client_serving([answer])
    headers = datafair.csv_header_names(FIELDS, SELECT)

    with pytest.raises(SourceError, match=reason):
        list(
            datafair.iter_csv_lines(
                client, "http://example", SELECT, headers, {"size": "3"}
            )
        )
