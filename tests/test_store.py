"""The data store: volume over initial copy, atomic writes, validation, readers."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest

from tests.conftest import PROJECT_DIR
from tests.conftest import make_app
from webapp import store as store_module
from webapp.store import DatasetError
from webapp.store import DataStore
from webapp.store import read_dataset

INITIAL = PROJECT_DIR / "webapp" / "datasets"


def tiny_dpe(n: int = 40, prefix: str = "2374E") -> pd.DataFrame:
    """A small valid DPE frame in the current ADEME schema."""
    rows = []
    for i in range(n):
        rows.append(
            {
                "numero_dpe": f"{prefix}{i:07d}A",
                "date_etablissement_dpe": f"2023-{i % 12 + 1:02d}-15",
                "etiquette_dpe": "ABCDEFG"[i % 7],
                "etiquette_ges": "ABCDEFG"[(i + 1) % 7],
                "conso_5_usages_par_m2_ep": 80.0 + 10 * i,
                "surface_habitable_logement": 30.0 + i,
                "code_insee_ban": "74010",
                "code_postal_ban": "74000",
                "_geopoint": "45.899,6.129",
                "classe_altitude": "inférieur à 400m",
                "zone_climatique": "H1c",
                "type_batiment": "appartement",
            }
        )
    return pd.DataFrame(rows)


def tiny_enedis() -> pd.DataFrame:
    """A small Enedis per-address frame with the legacy keys."""
    return pd.DataFrame(
        {
            "annee": [2022, 2023, 2023],
            "code_commune": ["74010", "74010", "74001"],
            "nombre_de_logements": [20, 21, 12],
            "consommation_annuelle_totale_de_l_adresse_mwh": [60.5, 58.0, 40.0],
            "adresse": ["1 RUE DU LAC", "1 RUE DU LAC", "3 RTE DU PONT"],
        }
    )


@pytest.fixture
def initial_dir(tmp_path):
    """A folder of small initial datasets (real communes, tiny DPE and Enedis)."""
    folder = tmp_path / "initial"
    folder.mkdir()
    shutil.copy(INITIAL / "communes-74.csv", folder / "communes-74.csv")
    shutil.copy(INITIAL / "properties.json", folder / "properties.json")
    tiny_dpe().to_csv(folder / "dpe-74.csv.gz", index=False)
    tiny_enedis().to_csv(folder / "enedis-74.csv.gz", index=False, sep=";")
    return folder


@pytest.fixture
def tiny_store(volume, initial_dir):
    """A loaded store on the tiny initial datasets."""
    data = DataStore(volume, initial_dir)
    data.load()
    return data


def test_initial_datasets_load_as_demo(tiny_store):
    assert len(tiny_store.dpe) == 40
    assert len(tiny_store.communes) == 279
    assert tiny_store.sources["dpe"]["origin"] == "demo"
    assert tiny_store.sources["communes"]["origin"] == "reference"
    assert tiny_store.sources["dpe"]["loaded_from"] == "initial"
    assert tiny_store.is_demo


def test_dpe_is_enriched_from_the_commune(tiny_store):
    dpe = tiny_store.dpe
    annecy = tiny_store.communes.set_index("code_insee").loc["74010"]

    assert (dpe["altitude"] == annecy["altitude_moyenne"]).all()
    assert dpe["tranche_altitude"].astype(str).eq("0-600").all()
    assert dpe["latitude"].iloc[0] == pytest.approx(45.899)
    assert isinstance(dpe["etiquette_dpe"].dtype, pd.CategoricalDtype)
    assert dpe["source"].astype(str).eq("existant").all()


def test_volume_copy_wins_over_initial(tiny_store):
    tiny_store.write_dataset("dpe", tiny_dpe(12, prefix="2474E"), origin="api")

    assert len(tiny_store.dpe) == 12
    assert tiny_store.sources["dpe"]["loaded_from"] == "volume"
    assert tiny_store.sources["dpe"]["origin"] == "api"
    manifest = json.loads(tiny_store.manifest_path.read_text())
    entry = manifest["datasets"]["dpe"]
    assert entry["rows"] == 12
    assert entry["origin"] == "api"
    assert entry["schema_version"] == 1
    assert entry["sha256"] == tiny_store.sources["dpe"]["sha256"]
    assert entry["updated_at"].endswith("+00:00")


def test_demo_flag_clears_when_both_demo_datasets_come_from_the_api(tiny_store):
    tiny_store.write_dataset("dpe", tiny_dpe(), origin="api")
    assert tiny_store.is_demo
    tiny_store.write_dataset("enedis", tiny_enedis(), origin="api")
    assert not tiny_store.is_demo


def test_write_keeps_the_previous_version_as_backup(tiny_store):
    tiny_store.write_dataset("dpe", tiny_dpe(10), origin="api")
    tiny_store.write_dataset("dpe", tiny_dpe(20), origin="api")

    backup = tiny_store.backup_dir / "dpe.csv"
    assert len(pd.read_csv(backup)) == 10
    assert len(tiny_store.dpe) == 20


def test_corrupt_volume_file_falls_back_to_backup_and_is_restored(tiny_store, caplog):
    tiny_store.write_dataset("dpe", tiny_dpe(10), origin="api")
    tiny_store.write_dataset("dpe", tiny_dpe(20), origin="api")
    current = tiny_store.data_dir / "dpe.csv"
    current.write_text("colonne_inconnue\n1\n2\n")

    with caplog.at_level(logging.WARNING, logger="webapp.store"):
        tiny_store.reload()

    assert len(tiny_store.dpe) == 10
    assert tiny_store.sources["dpe"]["loaded_from"] == "backup"
    assert "required columns missing" in caplog.text
    assert "previous version restored" in caplog.text
    assert len(list(tiny_store.quarantine_dir.iterdir())) == 1
    assert len(pd.read_csv(current)) == 10


def test_unreadable_volume_file_without_backup_falls_back_to_initial(tiny_store):
    tiny_store.data_dir.mkdir(parents=True)
    (tiny_store.data_dir / "dpe.csv").write_bytes(b"\x1f\x8b\x08garbage")

    tiny_store.reload()

    assert tiny_store.sources["dpe"]["loaded_from"] == "initial"
    assert len(tiny_store.dpe) == 40


def test_validation_drops_rows_and_counts_each_reason(volume, initial_dir, caplog):
    frame = tiny_dpe(10)
    frame.loc[0, "etiquette_dpe"] = "Z"
    frame.loc[1, "surface_habitable_logement"] = 2
    frame.loc[2, "conso_5_usages_par_m2_ep"] = 5000
    frame.loc[3, "date_etablissement_dpe"] = "pas une date"
    frame.loc[4, "numero_dpe"] = frame.loc[5, "numero_dpe"]
    frame["annee_construction"] = 1990.0
    frame.loc[6, "annee_construction"] = 1200
    frame.to_csv(initial_dir / "dpe-74.csv.gz", index=False)

    with caplog.at_level(logging.WARNING, logger="webapp.store"):
        data = DataStore(volume, initial_dir)
        data.load()

    assert data.rejections["dpe"] == {
        "etiquette_dpe not in A-G": 1,
        "missing or invalid DPE date": 1,
        "surface outside 5-1000 m2": 1,
        "kWh/m2/an outside 0-2000": 1,
        f"annee_construction outside 1600-{pd.Timestamp.now().year}": 1,
        "duplicate numero_dpe": 1,
    }
    assert len(data.dpe) == 4
    dropped_lines = [r for r in caplog.records if "rows dropped" in r.getMessage()]
    assert len(dropped_lines) == 6


def test_replaced_dpe_is_removed(volume, initial_dir):
    frame = tiny_dpe(5)
    frame["numero_dpe_remplace"] = None
    frame.loc[4, "numero_dpe_remplace"] = frame.loc[0, "numero_dpe"]
    frame.to_csv(initial_dir / "dpe-74.csv.gz", index=False)

    data = DataStore(volume, initial_dir)
    data.load()

    assert frame.loc[0, "numero_dpe"] not in set(data.dpe["numero_dpe"])
    assert data.rejections["dpe"] == {"replaced by a newer DPE": 1}


def test_codes_keep_leading_zeros(volume, initial_dir):
    enedis = tiny_enedis()
    enedis["code_commune"] = [1004.0, 1004.0, 74001.0]
    enedis.to_csv(initial_dir / "enedis-74.csv.gz", index=False)

    data = DataStore(volume, initial_dir)
    data.load()

    assert list(data.enedis["code_commune"]) == ["01004", "01004", "74001"]
    assert list(data.enedis["code_departement"]) == ["01", "01", "74"]


def test_file_missing_required_columns_is_rejected(tmp_path):
    path = tmp_path / "dpe.csv"
    pd.DataFrame({"autre": [1]}).to_csv(path, index=False)

    with pytest.raises(DatasetError) as info:
        read_dataset("dpe", path)

    assert "numero_dpe" in str(info.value)


def test_another_process_refresh_is_seen(tiny_store, volume, initial_dir):
    other = DataStore(volume, initial_dir)
    other.load()
    assert not other.check_for_update(min_interval=0)

    tiny_store.write_dataset("dpe", tiny_dpe(7), origin="api")

    assert other.check_for_update(min_interval=0)
    assert len(other.dpe) == 7
    assert not other.check_for_update(min_interval=0)


def test_a_running_refresh_defers_the_reload_to_its_end(
    tiny_store, volume, initial_dir
):
    from webapp.refresh import RefreshLock

    other = DataStore(volume, initial_dir)
    other.load()
    lock = RefreshLock(volume)
    assert lock.acquire()
    try:
        tiny_store.write_dataset("dpe", tiny_dpe(7), origin="api", reload=False)
        # One source of several is written: no reload yet.
        assert not other.check_for_update(min_interval=0)
        assert len(other.dpe) != 7
    finally:
        lock.release()

    assert other.check_for_update(min_interval=0)
    assert len(other.dpe) == 7


class Requests:
    """A fake `reload_requester`: records the stamps, answers `answer`."""

    def __init__(self, answer: bool = True):
        self.answer = answer
        self.stamps: list[str] = []

    def __call__(self, stamp: str) -> bool:
        self.stamps.append(stamp)
        return self.answer


def test_under_gunicorn_the_master_is_asked_once_per_refresh(
    tiny_store, volume, initial_dir, monkeypatch
):
    worker = DataStore(volume, initial_dir)
    worker.load()
    worker.reload_requester = requests = Requests()
    served = worker.snapshot

    tiny_store.write_dataset("dpe", tiny_dpe(7), origin="api", reload=False)
    stamp = tiny_store.read_manifest()["stamp"]

    assert not worker.check_for_update(min_interval=0)
    assert not worker.check_for_update(min_interval=0)
    # Asked once, and the current data is served until the worker is replaced.
    assert requests.stamps == [stamp]
    assert worker.snapshot is served

    monkeypatch.setattr(store_module, "RELOAD_FALLBACK_SECONDS", 0.0)
    assert worker.check_for_update(min_interval=0)
    assert len(worker.dpe) == 7


def test_without_a_master_to_ask_the_worker_reloads_itself(
    tiny_store, volume, initial_dir
):
    worker = DataStore(volume, initial_dir)
    worker.load()
    worker.reload_requester = Requests(answer=False)

    tiny_store.write_dataset("dpe", tiny_dpe(7), origin="api", reload=False)

    assert worker.check_for_update(min_interval=0)
    assert len(worker.dpe) == 7


def test_master_reload_signals_once_per_stamp(volume, monkeypatch):
    signals = []
    monkeypatch.setattr(store_module.os, "getppid", lambda: 4242)
    monkeypatch.setattr(store_module.os, "kill", lambda *args: signals.append(args))
    first = store_module.MasterReload(4242, volume)
    second = store_module.MasterReload(4242, volume)

    assert first("stamp-a") and second("stamp-a")
    assert signals == [(4242, store_module.signal.SIGHUP)]
    assert second("stamp-b")
    assert len(signals) == 2
    # Only the claim of the latest stamp is kept.
    claims = sorted(p.name for p in (volume / "refresh").glob("reload-*"))
    assert len(claims) == 1 and claims[0].endswith("stamp-b")
    # The master claims what it loaded itself: no worker asks again for it.
    assert first.claim("stamp-c")
    assert second("stamp-c") and len(signals) == 2


def test_master_reload_refuses_when_the_master_is_not_the_parent(volume):
    assert not store_module.MasterReload(-1, volume)("stamp")


KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from webapp.store import atomic_write_bytes

    def slow(handle):
        handle.write(b"numero_dpe,etiquette_dpe\\n")
        handle.flush()
        print("writing", flush=True)
        time.sleep(30)

    atomic_write_bytes(Path(sys.argv[1]), slow)
    """
)


def test_process_killed_during_a_write_leaves_the_previous_dataset(tiny_store):
    tiny_store.write_dataset("dpe", tiny_dpe(9), origin="api")
    target = tiny_store.data_dir / "dpe.csv"
    before = target.read_bytes()

    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(target)],
        cwd=PROJECT_DIR,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout.readline().strip() == "writing"
    child.kill()
    child.wait(timeout=10)
    child.stdout.close()

    assert target.read_bytes() == before
    assert list(tiny_store.data_dir.glob(".dpe.csv.tmp-*"))
    assert tiny_store.cleanup_temporary_files() == 1
    tiny_store.reload()
    assert len(tiny_store.dpe) == 9


def test_unwritable_mount_path_falls_back_with_one_warning(
    tmp_path, monkeypatch, caplog
):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setattr(store_module, "PROJECT_DIR", tmp_path / "project")

    with caplog.at_level(logging.WARNING):
        app = make_app(blocker / "volume")

    assert app.config["VOLUME_PATH"] == str(tmp_path / "project" / "volume")
    warnings = [r for r in caplog.records if "MOUNT_PATH" in r.getMessage()]
    assert len(warnings) == 1
    assert app.test_client().get("/context").status_code == 200


def test_real_communes_reference(shared_raw):
    frame, rejected = read_dataset(
        "communes", shared_raw / "communes-france-2025_dep74.csv"
    )

    assert len(frame) == 279
    assert rejected == {}
    assert frame["code_insee"].str.fullmatch(r"74\d{3}").all()
    missing = frame[frame["altitude_minimale"].isna()]["nom_standard"]
    assert set(missing) == {"Cusy", "Éloise", "Fillinges", "Marin", "Nernier"}


def test_real_light_communes_with_duplicate_column(shared_raw):
    frame, _ = read_dataset(
        "communes", shared_raw / "communes-france-2025-light_marinoo3.csv"
    )

    assert len(frame) == 34935
    assert "superficie_km2.1" not in frame.columns
    assert frame["code_insee"].str.len().eq(5).all()
    assert frame["code_insee"].str.startswith("0").any()


def test_real_neuf_sample_with_french_dates(shared_raw):
    frame, rejected = read_dataset(
        "dpe", shared_raw / "ademe_dpe02neuf_73-74_sample.csv"
    )

    assert rejected.get("duplicate numero_dpe") == 16
    assert len(frame) == 4562 - sum(rejected.values())
    assert frame["date_reception_dpe"].notna().all()
    assert frame["date_reception_dpe"].min() >= pd.Timestamp("2021-07-01")
    assert frame["code_insee_ban"].str.fullmatch(r"7[34]\d{3}").all()
    assert frame["source"].eq("neuf").all()


def test_real_legacy_existants_with_index_column(shared_raw):
    path = shared_raw / "other_departments"
    path = path / "ademe_dpe_v2_existants_lyon1_69001_sample1000.csv"
    frame, rejected = read_dataset("dpe", path)

    assert len(frame) + sum(rejected.values()) == 1000
    assert frame["etiquette_dpe"].isin(list("ABCDEFG")).all()
    assert frame["conso_5_usages_par_m2_ep"].notna().mean() > 0.95
    assert frame["code_insee_ban"].dropna().str.fullmatch(r"69\d{3}").all()
    assert frame["code_postal_ban"].dropna().str.fullmatch(r"69\d{3}").all()
    assert frame["_geopoint"].notna().mean() > 0.9
    assert frame["date_etablissement_dpe"].dt.year.between(2023, 2024).all()


def test_real_legacy_neufs_with_bom(shared_raw):
    path = shared_raw / "other_departments" / "ademe_dpe_v2_neufs_lyon8_69008.csv"
    frame, rejected = read_dataset("dpe", path)

    assert len(frame) + sum(rejected.values()) == 2851
    assert frame["numero_dpe"].notna().all()
    assert frame["surface_habitable_logement"].notna().mean() > 0.95
    assert set(frame["classe_altitude"].dropna()) <= {
        "inférieur à 400m",
        "400-800m",
        "supérieur à 800m",
    }


def test_real_enedis_legacy_sample(shared_raw):
    path = shared_raw / "other_departments"
    path = path / "enedis_conso_residentielle_adresses_lyon8_69123_2018-2023.csv"
    frame, rejected = read_dataset("enedis", path)

    assert len(frame) == 9312
    assert rejected == {}
    assert frame["annee"].between(2018, 2023).all()
    assert frame["code_commune"].eq("69123").all()
    assert frame["code_departement"].eq("69").all()
    assert frame["code_epci"].eq("200046977").all()
    assert frame["numero_de_voie"].iloc[0] == "54"


def test_real_enedis_in_data_fair_spelling(shared_raw, tmp_path):
    path = shared_raw / "other_departments"
    path = path / "enedis_conso_residentielle_adresses_lyon8_69123_2018-2023.csv"
    raw = pd.read_csv(path, sep=";", dtype=str).iloc[:, 1:]
    raw.columns = [c.replace("_de_l_adresse_", "_de_ladresse_") for c in raw.columns]
    raw.to_csv(tmp_path / "enedis.csv", index=False)

    frame, _ = read_dataset("enedis", tmp_path / "enedis.csv")

    assert len(frame) == 9312
    total = frame["consommation_annuelle_totale_de_l_adresse_mwh"]
    assert total.notna().all()


def test_parse_cache_sees_a_rewritten_file(tmp_path):
    path = tmp_path / "dpe.csv"
    tiny_dpe(3).to_csv(path, index=False)
    assert len(read_dataset("dpe", path)[0]) == 3

    time.sleep(0.01)
    tiny_dpe(5).to_csv(path, index=False)
    assert len(read_dataset("dpe", path)[0]) == 5
