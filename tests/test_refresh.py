"""The refresh job and `flask data refresh` against the fake upstream services."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
from datetime import date

import pandas as pd
import pytest

from tests import fake_upstream
from tests.conftest import PROJECT_DIR
from tests.conftest import make_app
from tests.fake_upstream import DATAGOUV_PREFIX
from tests.fake_upstream import ENEDIS_PREFIX
from webapp import refresh
from webapp.store import DataStore

demo_payloads = fake_upstream.demo_payloads
upstream = fake_upstream.upstream


@pytest.fixture
def refresh_app(volume, upstream):
    """An app on demo data whose sources point at the fake services."""
    return make_app(volume, **upstream.config(DATA_RELOAD_CHECK_SECONDS=0))


def run(app, *args):
    """Invoke `flask data refresh` with `args`."""
    return app.test_cli_runner().invoke(args=["data", "refresh", *args])


def expected_numeros(datasets: dict) -> set[str]:
    """The DPE a complete download must end with: all but the replaced ones."""
    rows = [row for rows in datasets.values() for row in rows]
    replaced = {r["numero_dpe_remplace"] for r in rows if r.get("numero_dpe_remplace")}
    return {r["numero_dpe"] for r in rows} - replaced


def summary_row(output: str, source: str) -> list[str]:
    """The cells of one source in the summary table printed by the command."""
    table = output.split("\nsource ", 1)[1]
    line = next(li for li in table.splitlines() if li.startswith(source + " "))
    return line.split()


def stored_numeros(app) -> set[str]:
    return set(app.extensions["store"].dpe["numero_dpe"])


def test_full_refresh_fetches_every_row_and_pages_show_api(
    refresh_app,
    upstream,
    demo_payloads,
):
    result = run(refresh_app)

    assert result.exit_code == 0, result.output
    store = refresh_app.extensions["store"]
    assert {s["origin"] for s in store.sources.values()} == {"api"}
    assert not store.is_demo
    assert stored_numeros(refresh_app) == expected_numeros(upstream_rows(upstream))
    # Progress lines (rows of total, rate, ETA) then the summary table.
    assert "of " in result.output and "rows/s" in result.output
    assert "ETA" in result.output
    assert summary_row(result.output, "communes")[1] == "ok"
    for source in ("communes", "ademe", "enedis"):
        assert f"\n{source}" in result.output

    # Documented request shape: the total first (`size=0`, the CSV pages carry
    # none), then CSV pages with suffixed filter, capped size, select, `next`.
    count, *lines = upstream.requests_to("dpe03existant/lines")
    assert count["size"] == "0" and count["code_departement_ban_eq"] == "74"
    assert lines[0]["code_departement_ban_eq"] == "74"
    assert lines[0]["size"] == "100"
    assert lines[0]["format"] == "csv"
    assert "etiquette_dpe" in lines[0]["select"].split(",")
    assert all("after" in args for args in lines[1:])
    existing = len(demo_payloads["ademe"]["dpe03existant"])
    assert len(lines) == existing // 100 + 1

    page = refresh_app.test_client().get("/context")
    assert page.status_code == 200
    assert ">API<" in page.get_data(as_text=True)
    assert "démonstration</td>" not in page.get_data(as_text=True)


def stored_dpe(app) -> pd.DataFrame:
    frame = app.extensions["store"].dpe
    return frame.sort_values("numero_dpe").reset_index(drop=True)


def test_csv_and_json_pages_store_the_same_table(volume, tmp_path, upstream):
    csv_app = make_app(volume, **upstream.config())
    assert run(csv_app, "--source", "ademe").exit_code == 0
    json_volume = tmp_path / "json-volume"
    json_volume.mkdir()
    json_app = make_app(json_volume, **upstream.config(ADEME_PAGE_FORMAT="json"))
    result = run(json_app, "--source", "ademe")

    assert result.exit_code == 0, result.output
    assert all(
        "format" not in args for args in upstream.requests_to("dpe02neuf/lines")[-1:]
    )
    pd.testing.assert_frame_equal(stored_dpe(csv_app), stored_dpe(json_app))


@pytest.mark.parametrize(
    "csv_header, reason",
    [(None, "answered format=csv with JSON"), ("type", "name no column")],
)
def test_csv_pages_fall_back_to_json(refresh_app, upstream, caplog, csv_header, reason):
    # An older server ignores `format`; headers named by no schema property
    # (here every header is "string") cannot be mapped to keys.
    upstream.csv_header = csv_header
    result = run(refresh_app, "--source", "ademe")

    assert result.exit_code == 0, result.output
    assert stored_numeros(refresh_app) == expected_numeros(upstream_rows(upstream))
    assert reason in caplog.text and "reading JSON pages instead" in caplog.text


def test_csv_headers_changing_mid_download_fail_the_source(refresh_app, upstream):
    upstream.fail(
        "csv_renamed", "dpe03existant/lines", when=lambda r: "after" in r.args
    )

    result = run(refresh_app, "--source", "ademe")

    assert result.exit_code != 0
    assert "schema change" in result.output and "dpe03existant" in result.output
    assert refresh_app.extensions["store"].is_demo


def upstream_rows(upstream) -> dict:
    return {name: dataset.rows for name, dataset in upstream.ademe.items()}


def test_enedis_addresses_and_national_sums(refresh_app, upstream):
    result = run(refresh_app, "--source", "enedis")

    assert result.exit_code == 0, result.output
    store = refresh_app.extensions["store"]
    rows = pd.DataFrame(upstream.enedis.rows)
    assert len(store.enedis) == len(rows)
    assert store.enedis["annee"].dtype == "int64"
    expected = rows.groupby(["code_commune", "annee"]).agg(
        nombre_de_logements=("nombre_de_logements", "sum"),
        conso_total_mwh=("consommation_annuelle_totale_de_l_adresse_mwh", "sum"),
    )
    got = store.enedis_communes.set_index(["code_commune", "annee"]).sort_index()
    assert list(got.columns) == ["nombre_de_logements", "conso_total_mwh"]
    pd.testing.assert_frame_equal(
        got,
        expected.sort_index(),
        check_dtype=False,
        check_index_type=False,
        check_exact=False,
    )
    # The sums come from the API's aggregation, never from paging France.
    aggs = upstream.requests_to("/values_agg")
    assert {a["metric_field"] for a in aggs} == {
        "nombre_de_logements",
        "consommation_annuelle_totale_de_ladresse_mwh",
    }
    assert all("code_departement_eq" not in a for a in aggs)
    assert store.sources["enedis_communes"]["origin"] == "api"


def test_enedis_falls_back_to_the_ods_host(refresh_app, upstream):
    upstream.down.add(ENEDIS_PREFIX)

    result = run(refresh_app, "--source", "enedis")

    assert result.exit_code == 0, result.output
    store = refresh_app.extensions["store"]
    assert len(store.enedis) == len(upstream.enedis.rows)
    # On the legacy host `annee` is a date: stored as an integer year.
    assert set(store.enedis["annee"]) <= set(range(2018, 2025))
    manifest = store.read_manifest()["datasets"]
    assert manifest["enedis"]["host"] == "ods"
    assert manifest["enedis_communes"]["host"] == "ods"
    # /records only counts (limit 0); the rows come from the exports endpoint.
    assert upstream.requests_to("/records")[0]["limit"] == "0"
    exports = upstream.requests_to("/exports/json")
    assert any("group_by" in e for e in exports)
    assert all("offset" not in e for e in exports)


def test_national_sums_split_by_departement_when_truncated(
    refresh_app,
    upstream,
    monkeypatch,
):
    first_of_year = {row["annee"]: row for row in upstream.enedis.rows}
    extra = [
        dict(row, code_commune="69123", code_departement="69", nom_commune="Lyon")
        for row in first_of_year.values()
    ]
    upstream.set_enedis(
        [{k: v for k, v in r.items() if k != "_i"} for r in upstream.enedis.rows]
        + extra
    )
    per_year = pd.DataFrame(upstream.enedis.rows).groupby("annee")["code_commune"]
    largest_74 = (
        pd.DataFrame([r for r in upstream.enedis.rows if r["code_departement"] == "74"])
        .groupby("annee")["code_commune"]
        .nunique()
        .max()
    )
    assert per_year.nunique().max() > largest_74 >= 7
    monkeypatch.setattr("webapp.sources.datafair.MAX_AGG_SIZE", int(largest_74))

    result = run(refresh_app, "--source", "enedis")

    assert result.exit_code == 0, result.output
    national = refresh_app.extensions["store"].enedis_communes
    assert "69123" in set(national["code_commune"])
    split = [
        a for a in upstream.requests_to("/values_agg") if "code_departement_eq" in a
    ]
    assert {a["code_departement_eq"] for a in split} == {"69", "74"}


def test_incremental_refresh_upserts_and_removes_replaced(
    refresh_app,
    upstream,
):
    assert run(refresh_app, "--source", "ademe").exit_code == 0
    before = refresh_app.extensions["store"].dpe.set_index("numero_dpe")
    rows = upstream.ademe["dpe03existant"].rows
    today = date.today().isoformat()
    changed = dict(rows[0], etiquette_dpe="G", date_derniere_modification_dpe=today)
    replaced = rows[1]["numero_dpe"]
    newcomer = dict(
        rows[2],
        numero_dpe="2674E0000001Z",
        numero_dpe_remplace=replaced,
        date_derniere_modification_dpe=today,
    )
    dataset = upstream.ademe["dpe03existant"]
    dataset.upsert({k: v for k, v in changed.items() if k != "_i"})
    dataset.upsert({k: v for k, v in newcomer.items() if k != "_i"})
    upstream.log.clear()

    result = run(refresh_app, "--source", "ademe")

    assert result.exit_code == 0, result.output
    first = upstream.requests_to("dpe03existant/lines")[0]
    assert first["date_derniere_modification_dpe_gte"] == today
    after = refresh_app.extensions["store"].dpe.set_index("numero_dpe")
    assert after.loc[changed["numero_dpe"], "etiquette_dpe"] == "G"
    assert "2674E0000001Z" in after.index
    assert replaced not in after.index
    assert len(after) == len(before) + 1 - 1
    line = summary_row(result.output, "ademe")
    assert line[1] == "ok"
    assert line[3:6] == ["1", "1", "1"]  # added, updated, removed


def test_full_flag_downloads_everything_again(refresh_app, upstream):
    assert run(refresh_app, "--source", "ademe").exit_code == 0
    upstream.log.clear()

    assert run(refresh_app, "--source", "ademe", "--full").exit_code == 0

    first = upstream.requests_to("dpe03existant/lines")[0]
    assert "date_derniere_modification_dpe_gte" not in first


def test_interrupted_download_resumes_from_the_cursor(
    refresh_app,
    upstream,
):
    # The server fails for good once the third page of dpe03existant is asked.
    def third_page(request):
        return int(request.args.get("after", 0)) >= 200

    fault = upstream.fail("500", "dpe03existant/lines", times=100, when=third_page)

    failed = run(refresh_app, "--source", "ademe")

    assert failed.exit_code != 0
    last_line = failed.output.strip().splitlines()[-1]
    assert last_line.startswith("Error: ademe: HTTP 500 after 4 attempts")
    assert upstream.url in last_line
    store = refresh_app.extensions["store"]
    assert store.sources["dpe"]["origin"] == "demo"
    cursor = store.read_manifest()["refresh"]["ademe"]["cursor"]
    saved = cursor["datasets"]["dpe03existant"]
    assert saved["rows"] == 200 and "after=200" in saved["next"]

    fault.times = 0
    upstream.log.clear()
    resumed = run(refresh_app, "--source", "ademe")

    assert resumed.exit_code == 0, resumed.output
    lines = upstream.requests_to("dpe03existant/lines")
    assert lines[0]["after"] == "200"
    assert stored_numeros(refresh_app) == expected_numeros(upstream_rows(upstream))
    assert store.read_manifest()["refresh"]["ademe"]["cursor"] is None


def test_retries_429_500_and_a_slow_answer(refresh_app, upstream, caplog):
    refresh_app.config["HTTP_READ_TIMEOUT"] = 0.3
    upstream.slow_seconds = 0.6
    upstream.fail("429", "dpe03existant/lines")
    upstream.fail("500", "dpe02neuf/lines")
    upstream.fail("slow", "dpe03existant/schema")

    result = run(refresh_app, "--source", "ademe")

    assert result.exit_code == 0, result.output
    assert stored_numeros(refresh_app) == expected_numeros(upstream_rows(upstream))
    retries = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
    assert any("HTTP 429" in m for m in retries)
    assert any("HTTP 500" in m for m in retries)
    assert any("no answer within 0.3 s" in m for m in retries)


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("html", "HTML page instead of JSON"),
        ("empty", "empty response body"),
        ("truncated_json", "invalid or truncated JSON"),
        ("wrong_shape", "unexpected JSON shape: list"),
    ],
    ids=["html", "empty", "truncated", "shape"],
)
def test_bad_response_fails_the_source_and_keeps_previous_data(
    refresh_app,
    upstream,
    kind,
    reason,
):
    upstream.fail(kind, "dpe02neuf/lines")

    result = run(refresh_app, "--source", "ademe")

    assert result.exit_code == 1
    message = result.output.strip().splitlines()[-1]
    assert message.startswith(f"Error: ademe: {reason}")
    assert "dpe02neuf/lines" in message
    store = refresh_app.extensions["store"]
    assert store.sources["dpe"]["origin"] == "demo"
    assert len(store.dpe) > 10_000


def test_schema_change_fails_with_the_missing_field(
    refresh_app,
    upstream,
):
    upstream.ademe["dpe02neuf"].keys.remove("etiquette_dpe")

    result = run(refresh_app, "--source", "ademe")

    assert result.exit_code == 1
    assert "schema change: required fields missing: etiquette_dpe" in result.output


@pytest.mark.parametrize("page_format", ["json", "csv"])
def test_bad_rows_are_rejected_and_counted_by_reason(
    volume, upstream, caplog, page_format
):
    app = make_app(volume, **upstream.config(ADEME_PAGE_FORMAT=page_format))
    dataset = upstream.ademe["dpe02neuf"]
    good = {k: v for k, v in dataset.rows[0].items() if k != "_i"}
    upstream.extra_fields = {"nouveau_champ": "x"}
    dataset.upsert(dict(good, numero_dpe="2474N0000000A", etiquette_dpe="Z"))
    dataset.upsert(dict(good, numero_dpe="2474N0000000B", surface_habitable_logement=2))
    dataset.upsert(dict(good, numero_dpe="2474N0000000C", conso_5_usages_ep="n/a"))
    if page_format == "json":
        dataset.rows.append(
            {"_i": 10**6, "numero_dpe": {"nested": 1}, "code_departement_ban": "74"}
        )

    result = run(app, "--source", "ademe")

    assert result.exit_code == 0, result.output
    assert "ademe: 1 rejected: etiquette_dpe not in A-G" in result.output
    assert "ademe: 1 rejected: surface outside 5-1000 m2" in result.output
    stored = app.extensions["store"].dpe.set_index("numero_dpe")
    assert good["numero_dpe"] in stored.index
    # A word in a number column empties that value only.
    assert pd.isna(stored.loc["2474N0000000C", "conso_5_usages_ep"])
    assert stored.loc["2474N0000000C", "etiquette_dpe"] == good["etiquette_dpe"]
    if page_format == "json":
        assert "ademe: 1 rejected: non-scalar field value" in result.output
        assert any("new fields ignored" in r.getMessage() for r in caplog.records)
    else:
        assert any("CSV columns ignored" in r.getMessage() for r in caplog.records)


def test_unreachable_services_fail_fast_and_keep_serving(volume):
    app = make_app(
        volume,
        ADEME_API_URL="http://127.0.0.1:9/ademe",
        ENEDIS_API_URL="http://127.0.0.1:9/enedis",
        ENEDIS_ODS_URL="http://127.0.0.1:9/ods",
        DATAGOUV_API_URL="http://127.0.0.1:9/udata",
        COMMUNES_URL="http://127.0.0.1:9/communes.csv",
        HTTP_CONNECT_TIMEOUT=0.5,
        HTTP_RETRIES=1,
        HTTP_BACKOFF_SECONDS=0.01,
        HTTP_MIN_INTERVAL_SECONDS=0,
    )

    result = run(app)

    assert result.exit_code == 1
    message = result.output.strip().splitlines()[-1]
    assert "communes: download failed: unreachable after 2 attempts" in message
    assert "ademe: unreachable after 2 attempts (http://127.0.0.1:9/ademe" in message
    assert "enedis: every host failed" in message
    store = app.extensions["store"]
    assert store.is_demo
    assert app.test_client().get("/context").status_code == 200


def test_failure_after_success_leaves_the_refreshed_data(
    refresh_app,
    upstream,
):
    assert run(refresh_app, "--source", "communes").exit_code == 0
    store = refresh_app.extensions["store"]
    entry = store.read_manifest()["datasets"]["communes"]
    upstream.down.add(DATAGOUV_PREFIX)
    upstream.fail("html", "/static/resources/", times=10)

    result = run(refresh_app, "--source", "communes")

    assert result.exit_code == 1
    assert "HTML page instead of a data file" in result.output
    assert store.read_manifest()["datasets"]["communes"] == entry
    assert store.sources["communes"]["origin"] == "api"
    assert store.read_manifest()["refresh"]["communes"]["last_status"] == "failed"


def test_communes_resolved_through_udata_then_static_fallback(
    refresh_app,
    upstream,
):
    assert run(refresh_app, "--source", "communes").exit_code == 0
    assert upstream.requests_to(f"{upstream.resource_stamp}/communes-france-2025.csv")
    store = refresh_app.extensions["store"]
    assert len(store.communes_74) == 279
    assert store.communes["code_insee"].str.len().eq(5).all()

    upstream.down.add(DATAGOUV_PREFIX)
    upstream.log.clear()
    upstream.fail("short_body", "/static/resources/")
    result = run(refresh_app, "--source", "communes")

    assert result.exit_code == 0, result.output
    static = upstream.requests_to("static/communes-france-2025.csv")
    assert len(static) == 2  # the truncated download was retried


def test_page_size_is_capped_and_too_large_sizes_refused(
    refresh_app,
    upstream,
):
    refresh_app.config["ADEME_PAGE_SIZE"] = 50_000

    assert run(refresh_app, "--source", "ademe").exit_code == 0

    pages = upstream.requests_to("dpe03existant/lines")[1:]
    assert pages and all(args["size"] == "10000" for args in pages)
    from webapp.sources.http import Client
    from webapp.sources.http import SourceError

    with Client("ademe") as client, pytest.raises(SourceError) as caught:
        client.get_json(
            f"{upstream.config()['ADEME_API_URL']}/dpe03existant/lines",
            {"size": "10001"},
        )
    assert "HTTP 400" in str(caught.value)
    assert "cannot be more than 10000" in str(caught.value)


def test_only_one_refresh_at_a_time(refresh_app, volume):
    lock = refresh.RefreshLock(volume)
    assert lock.acquire()
    try:
        result = run(refresh_app)
    finally:
        lock.release()

    assert result.exit_code == 1
    assert "a refresh is already running" in result.output


def test_other_workers_reload_after_a_refresh(volume, upstream):
    settings = upstream.config(DATA_RELOAD_CHECK_SECONDS=0)
    writer = make_app(volume, **settings)
    reader = make_app(volume, **settings)
    assert reader.extensions["store"].sources["dpe"]["origin"] == "demo"

    assert run(writer, "--source", "ademe").exit_code == 0
    reader.test_client().get("/context")

    assert reader.extensions["store"].sources["dpe"]["origin"] == "api"
    assert stored_numeros(reader) == stored_numeros(writer)


def test_a_cursor_save_does_not_reload_the_workers(volume, refresh_app):
    store = refresh_app.extensions["store"]
    snapshot = store.snapshot

    refresh.save_refresh_state(store, "ademe", {"cursor": {"next": "x"}})

    assert store.check_for_update(0) is False
    assert store.snapshot is snapshot
    other = DataStore(volume)
    other.load()
    assert other.read_manifest()["refresh"]["ademe"]["cursor"] == {"next": "x"}


def test_status_file_reports_each_source(refresh_app, upstream, volume):
    assert run(refresh_app, "--source", "communes").exit_code == 0

    status = json.loads((volume / "refresh" / "status.json").read_text())
    assert status["state"] == "done"
    assert status["sources"]["communes"]["status"] == "ok"
    assert status["sources"]["communes"]["result"]["rows"] == 279


def test_a_manifest_written_during_a_load_is_not_missed(volume):
    """A refresh finishing while a worker loads must still trigger its reload."""
    store = DataStore(volume)
    writer = DataStore(volume)
    original = store.read_manifest
    calls = []

    def read_then_refresh():
        manifest = original()
        if not calls:
            calls.append(1)
            writer.update_manifest(lambda m: m.setdefault("note", "refreshed"))
        return manifest

    store.read_manifest = read_then_refresh
    store.load()

    assert store.check_for_update(0) is True
    assert store.snapshot.stamp == writer.read_manifest()["stamp"]


def _cli_env(upstream, volume) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
    env.update({key: str(value) for key, value in upstream.config().items()})
    env.update(MOUNT_PATH=str(volume), SECRET_KEY="test", PYTHONPATH=str(PROJECT_DIR))
    return env


def _flask(env, *args, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "webapp", "data", "refresh", *args],
        cwd=PROJECT_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


def test_killed_cli_resumes_and_ends_with_the_same_rows(
    volume,
    upstream,
):
    """Acceptance: kill -9 half-way, re-run, same rows as an uninterrupted run."""
    # A web worker started before the refresh, in this process.
    app = make_app(volume, DATA_RELOAD_CHECK_SECONDS=0)
    assert app.extensions["store"].sources["dpe"]["origin"] == "demo"
    event = threading.Event()
    upstream.block = (
        lambda r: "dpe03existant/lines" in r.path and r.args.get("after") == "200",
        event,
    )
    env = _cli_env(upstream, volume)
    process = _flask(env, "--source", "ademe")
    try:
        assert upstream.reached.wait(timeout=60), "the CLI never reached page 3"
        process.kill()
        process.wait(timeout=10)
        process.stdout.close()
    finally:
        event.set()
        upstream.block = None
    cursor = json.loads((volume / "staging" / "ademe" / "cursor.json").read_text())
    assert cursor["datasets"]["dpe03existant"]["rows"] == 200
    upstream.log.clear()

    # The second run is another process too: the worker reloads its data.
    second = _flask(env, "--source", "ademe")
    output, _ = second.communicate(timeout=120)

    assert second.returncode == 0, output
    assert "resuming the full download" in output
    assert upstream.requests_to("dpe03existant/lines")[0]["after"] == "200"
    app.test_client().get("/context")
    assert app.extensions["store"].sources["dpe"]["origin"] == "api"
    assert stored_numeros(app) == expected_numeros(upstream_rows(upstream))


@pytest.mark.parametrize("damage", ["deleted", "garbled", "renamed columns"])
def test_a_staging_folder_missing_pages_downloads_that_dataset_again(
    refresh_app, upstream, volume, damage
):
    fault = upstream.fail(
        "500",
        "dpe03existant/lines",
        times=100,
        when=lambda r: int(r.args.get("after", 0)) >= 200,
    )
    assert run(refresh_app, "--source", "ademe").exit_code == 1
    page = volume / "staging" / "ademe" / "dpe03existant" / "page-00001.csv"
    if damage == "deleted":
        page.unlink()
    elif damage == "garbled":
        page.write_bytes(b'"Numero dpe,"unterminated\n')
    else:
        page.write_bytes(b"a,b\n1,2\n")
    fault.times = 0
    upstream.log.clear()

    result = run(refresh_app, "--source", "ademe")

    assert result.exit_code == 0, result.output
    count, first, *_ = upstream.requests_to("dpe03existant/lines")
    assert count["size"] == "0" and "after" not in first
    assert stored_numeros(refresh_app) == expected_numeros(upstream_rows(upstream))


def test_progress_bar_shows_rows_of_total_rate_and_eta():
    stream = io.StringIO()
    bar = refresh.ProgressBar(stream, interactive=True)

    bar.start("ademe", "ademe dpe03existant", 1000)
    bar.advance("ademe", 250, 1000)

    drawn = stream.getvalue()
    assert drawn.startswith("\rademe dpe03existant")
    assert "250 of 1,000 rows" in drawn and "rows/s" in drawn and "ETA" in drawn
    line = bar.render(500, 1000, elapsed=10.0)
    assert "[############............]" in line
    assert "50 rows/s" in line and line.endswith("ETA 0:10")
    assert bar.render(42, None, elapsed=1.0).endswith("42 rows  42 rows/s  ETA --:--")


def test_progress_bar_prints_lines_when_not_a_terminal():
    stream = io.StringIO()
    bar = refresh.ProgressBar(stream, interactive=False, every=3600)

    bar.start("enedis", "enedis adresses 74", None)
    for done in range(0, 500, 50):
        bar.advance("enedis", done, None)
    bar.finish(refresh.SourceResult("enedis", status="ok", rows=450, duration=2))

    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert lines[0].startswith("enedis adresses 74") and " 0 rows" in lines[0]
    assert "450 rows" in lines[1]  # the last state, printed when the step ends
    assert lines[2] == "enedis     done in 0:02 (450 rows)"


def test_an_unknown_page_format_fails_with_its_name(volume, upstream):
    app = make_app(volume, **upstream.config(ADEME_PAGE_FORMAT="xml"))

    result = run(app, "--source", "ademe")

    assert result.exit_code == 1
    assert "ADEME_PAGE_FORMAT must be csv or json: 'xml'" in result.output
    assert app.extensions["store"].is_demo
