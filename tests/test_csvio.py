"""The fast CSV writer writes what `DataFrame.to_csv` writes, byte for byte."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from webapp import csvio
from webapp import demo
from webapp import store


def written(frame: pd.DataFrame, chunk_rows: int = csvio.CHUNK_ROWS) -> str:
    return "".join(csvio.iter_csv_chunks(frame, chunk_rows))


def expected(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False, date_format="%Y-%m-%d")


def awkward_frame(rows: int = 60, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    words = np.array(["a,b", 'dit "oui"', "ligne\nsuivante", " espace ", "", "é"])
    decimals = rng.integers(0, 4, rows)
    floats = np.round(rng.normal(100, 50, rows) * 10.0**decimals) / 10.0**decimals
    floats[::7] = np.nan
    floats[1] = 1e20
    floats[2] = 1e-7
    frame = pd.DataFrame(
        {
            "texte": pd.array(rng.choice(words, rows), dtype="string"),
            "objet": rng.choice(words, rows).astype(object),
            "nombre": floats,
            "entier": np.arange(rows),
            "entier_nul": pd.array(
                [None if i % 5 == 0 else i for i in range(rows)], dtype="Int64"
            ),
            "booleen": rng.random(rows) > 0.5,
            "date": pd.to_datetime("2024-01-01")
            + pd.to_timedelta(rng.integers(0, 900, rows), unit="D"),
            "categorie": pd.Categorical(rng.choice(["x", "y", None], rows)),
            "unique": [f"id-{i}" for i in range(rows)],
        }
    )
    frame.loc[3, "texte"] = pd.NA
    frame.loc[4, "date"] = pd.NaT
    return frame


@pytest.mark.parametrize("chunk_rows", [7, csvio.CHUNK_ROWS])
def test_awkward_values_are_written_like_to_csv(chunk_rows):
    frame = awkward_frame()

    assert written(frame, chunk_rows) == expected(frame)


def test_a_header_that_needs_quotes_and_an_empty_frame():
    frame = pd.DataFrame({"a,b": pd.Series([], dtype=float), "c": []})

    assert written(frame) == expected(frame)


def test_the_stored_demo_tables_are_written_like_to_csv(tmp_path):
    communes = demo.load_communes()
    dpe, _ = store.normalise_dpe(demo.generate_dpe(communes, n=2_000, seed=5))

    assert written(dpe) == expected(dpe)
    assert written(communes) == expected(communes)


def test_written_file_reads_back_to_the_same_frame(tmp_path):
    frame = awkward_frame(seed=9)
    path = tmp_path / "out.csv"

    digest = store.write_frame_csv(path, frame)
    zipped = store.write_frame_csv(tmp_path / "out.csv.gz", frame)

    assert digest == store.file_sha256(path)
    assert zipped == store.file_sha256(tmp_path / "out.csv.gz")
    back = pd.read_csv(path, keep_default_na=False, na_values=[""])
    reference = pd.read_csv(
        io.StringIO(expected(frame)), keep_default_na=False, na_values=[""]
    )
    pd.testing.assert_frame_equal(back, reference)
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "out.csv.gz", keep_default_na=False, na_values=[""]),
        reference,
    )
