"""Evaluate the current models on any DPE file: ``python -m ml.evaluate --data f.csv``.

The file may use the current ADEME keys or the legacy accented labels (mapped by
`webapp.store.read_dataset`). Location features come from the commune code when
the file lacks them; targets are restated under the rules in force as in training.
The output says which inputs and targets are missing and when the sample is too
small for the figures to mean much.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ml import costs
from ml import features as F
from ml import metrics as M
from ml.predict import Predictor
from webapp import rules

logger = logging.getLogger(__name__)

#: Below this many rows the report warns that the figures are unstable.
SMALL_SAMPLE = 1000
#: Below this many rows of a class, per-class figures are unstable.
SMALL_CLASS = 30


def locate(frame: pd.DataFrame, predictor: Predictor) -> pd.DataFrame:
    """Fill altitude, density, zone and altitude class from the commune code."""
    frame = frame.copy()
    codes = frame["code_insee_ban"].astype("object")
    places = predictor.metadata.get("locations", {})
    for column, key in (
        ("altitude", "altitude"),
        ("densite", "densite"),
        ("zone_climatique", "zone_climatique"),
        ("classe_altitude", "classe_altitude"),
    ):
        lookup = {code: place.get(key) for code, place in places.items()}
        found = codes.map(lookup)
        if column in frame.columns:
            current = frame[column].astype("object")
            frame[column] = current.where(current.notna(), found)
        else:
            frame[column] = found
    return frame


def _new_build_years(frame: pd.DataFrame) -> int:
    """Use the DPE year as construction year of new builds lacking one (in place)."""
    year = pd.to_numeric(frame["annee_construction"], errors="coerce")
    missing = (
        (frame["source"].astype("object") == "neuf")
        & year.isna()
        & frame["periode_construction"].isna()
    )
    if missing.any():
        dpe_year = pd.to_datetime(frame["date_etablissement_dpe"]).dt.year
        frame["annee_construction"] = year.where(~missing, dpe_year.astype(float))
    return int(missing.sum())


def evaluate_frame(dpe: pd.DataFrame, predictor: Predictor) -> dict:
    """Return the metrics that the columns of a normalised DPE table allow."""
    dwelling = dpe["type_batiment"].isin(F.BATIMENTS).to_numpy(dtype=bool)
    with_surface = dpe["surface_habitable_logement"].notna().to_numpy(dtype=bool)
    located = locate(dpe[dwelling & with_surface], predictor)
    imputed = _new_build_years(located)
    features = F.frame_features(located)
    result: dict[str, Any] = {
        "rows_in_file": int(len(dpe)),
        "rows_evaluated": int(len(features)),
        "rows_skipped_not_a_dwelling": int((~dwelling).sum()),
        "rows_skipped_without_surface": int((dwelling & ~with_surface).sum()),
        "missing_share_per_feature": {
            name: round(float(features[name].isna().mean()), 3) for name in F.FEATURES
        }
        if len(features)
        else {},
        "notes": [],
    }
    notes = result["notes"]
    if imputed:
        notes.append(
            f"{imputed} new-build DPEs without a construction year: the year of the "
            "DPE is used (a household knows its dwelling is new)."
        )
    if not len(features):
        notes.append("No dwelling rows (maison/appartement): nothing to evaluate.")
        return result
    if len(features) < SMALL_SAMPLE:
        notes.append(
            f"Small sample ({len(features)} rows < {SMALL_SAMPLE}): the figures "
            "below are unstable."
        )
    missing = [
        n for n, share in result["missing_share_per_feature"].items() if share > 0.5
    ]
    if missing:
        notes.append(
            "Inputs mostly missing in this file (models see them as unknown): "
            + ", ".join(missing)
        )

    out = predictor.predict_frame(features)
    labels = np.asarray(predictor.classes, dtype=object)[out["proba"].argmax(axis=1)]
    has_ep = located["conso_5_usages_par_m2_ep"].notna().any()
    has_ges = located["emission_ges_5_usages_par_m2"].notna().any()
    if has_ep and has_ges:
        targets = F.harmonised_targets(located)
        truth = targets["etiquette_dpe"].astype(str).to_numpy()
        notes.append("Labels restated under the rules in force (as in training).")
    else:
        truth = located["etiquette_dpe"].astype(str).to_numpy()
        targets = None
        notes.append(
            "No per-m² EP or GHG in this file: recorded labels are compared as they "
            "are (older DPEs may carry the pre-2026 electricity factor)."
        )

    result["classification"] = M.classification_metrics(truth, labels)
    result["calibration"] = M.calibration_metrics(
        truth, out["proba"], predictor.classes
    )
    result["passoire"] = M.passoire_metrics(
        truth, out["passoire_probability"], predictor.passoire_threshold
    )
    counts = pd.Series(truth).value_counts()
    rare = [label for label in rules.LABELS if counts.get(label, 0) < SMALL_CLASS]
    if rare:
        notes.append(
            f"Classes with fewer than {SMALL_CLASS} rows: {', '.join(rare)} "
            "(balanced accuracy and macro-F1 are unstable)."
        )

    surface = features["surface_habitable_logement"].to_numpy()
    if targets is not None:
        ep = targets["conso_5_usages_par_m2_ep"].to_numpy()
        result["conso_ep"] = M.regression_metrics(ep, out["conso_ep"], surface)
        result["interval"] = M.interval_metrics(
            ep, out["conso_ep_q10"], out["conso_ep_q90"]
        )
        result["emission_ges"] = M.regression_metrics(
            targets["emission_ges_5_usages_par_m2"], out["emission_ges"], surface
        )
    else:
        result["conso_ep"] = "not computable: no conso_5_usages_par_m2_ep column"
    if (
        "cout_total_5_usages" in located
        and located["cout_total_5_usages"].notna().any()
    ):
        result["cost"] = costs.compare_with_dpe(
            out["conso_ep"],
            surface,
            features["type_energie_principale_chauffage"],
            located["cout_total_5_usages"].to_numpy(dtype=float),
        )
    return result


def evaluate_file(path: Path, predictor: Predictor) -> dict:
    """Read a DPE file in any supported schema and evaluate the models on it."""
    from webapp.store import read_dataset

    frame, rejections = read_dataset("dpe", Path(path))
    result = evaluate_frame(frame, predictor)
    result["file"] = str(path)
    result["rows_rejected_at_load"] = dict(rejections)
    result["model_version"] = predictor.version
    return result


def _summary(result: dict) -> str:
    lines = [
        f"File: {result['file']} — model {result['model_version']}",
        f"Rows: {result['rows_in_file']} read, {result['rows_evaluated']} evaluated",
    ]
    lines += [f"Note: {note}" for note in result["notes"]]
    classification = result.get("classification")
    if classification:
        lines.append(
            "Label: accuracy {accuracy}, balanced {balanced_accuracy}, macro-F1 "
            "{macro_f1}, within one class {within_one_class}".format(**classification)
        )
        p = result["passoire"]
        lines.append(
            f"Passoire: ROC-AUC {p['roc_auc']}, F1 {p['f1']}, recall {p['recall']}, "
            f"precision {p['precision']} ({p['positives']} positives)"
        )
        lines.append(f"Calibration: ECE {result['calibration']['ece_top_label']}")
    if isinstance(result.get("conso_ep"), dict):
        ep = result["conso_ep"]
        lines.append(
            f"kWh EP/m²: R² {ep.get('r2')}, MAE {ep.get('mae')}; interval coverage "
            f"{result['interval']['coverage']}"
        )
    elif "conso_ep" in result:
        lines.append(f"kWh EP/m²: {result['conso_ep']}")
    if "cost" in result:
        lines.append(f"Cost: {result['cost']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m ml.evaluate", description=__doc__)
    parser.add_argument("--data", type=Path, required=True, help="DPE CSV file")
    parser.add_argument("--json", action="store_true", help="print JSON only")
    args = parser.parse_args(argv)

    from webapp import create_app

    app = create_app()
    registry = app.extensions["models"]
    if registry.predictor is None:
        print(f"No usable model: {registry.problem}", file=sys.stderr)
        return 2
    if not args.data.is_file():
        print(f"No such file: {args.data}", file=sys.stderr)
        return 2
    result = evaluate_file(args.data, registry.predictor)
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    else:
        print(_summary(result))
        print(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
