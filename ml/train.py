"""Train, compare and persist the models on the DPE data in service.

Run with ``flask --app webapp ml train`` or ``python -m ml.train``. The most recent
months are held out as the test set; the rest is split at random into fitting and
validation rows. Validation picks the passoire threshold and widens the quantile
interval (split-conformal); the test set only measures. Gradient-boosted trees
with native categorical support are compared with simpler models and with two
baselines: the majority class and the original app's random forest (100 trees,
depth 20, one-hot inputs).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import os
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import replace
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.ensemble import RandomForestClassifier
from sklearn.ensemble import RandomForestRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.frozen import FrozenEstimator
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.linear_model import Ridge
from sklearn.model_selection import StratifiedKFold
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.preprocessing import OrdinalEncoder
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from ml import costs
from ml import features as F
from ml import metrics as M
from ml.predict import CLASSIFIER
from ml.predict import Predictor
from ml.versions import library_versions
from webapp import rules

logger = logging.getLogger(__name__)

#: Nominal coverage of the consumption interval (q10 to q90).
INTERVAL_LEVEL = 0.8
#: Recall of the passoire decision the threshold must reach on validation.
PASSOIRE_MIN_RECALL = 0.85
#: Categories seen fewer times are treated as missing (too rare to learn).
MIN_CATEGORY_ROWS = 10
#: Target of each regressor.
REGRESSION_TARGETS = {
    "conso_ep": "conso_5_usages_par_m2_ep",
    "conso_ep_q10": "conso_5_usages_par_m2_ep",
    "conso_ep_q50": "conso_5_usages_par_m2_ep",
    "conso_ep_q90": "conso_5_usages_par_m2_ep",
    "emission_ges": "emission_ges_5_usages_par_m2",
}
QUANTILES = {"conso_ep_q10": 0.1, "conso_ep_q50": 0.5, "conso_ep_q90": 0.9}
PROJECT_DIR = Path(__file__).resolve().parent.parent
REPORT_DIR = Path(__file__).resolve().parent / "reports"


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run (the defaults are the production ones)."""

    seed: int = 0
    test_months: int = 6
    validation_share: float = 0.2
    cv_folds: int = 3
    max_iter: int = 300
    #: HistGradientBoosting settings compared on validation (see HGB_SETTINGS).
    hgb_settings: tuple[str, ...] = ("peu_profond", "profond")
    #: Subsample of the usable rows (None: all), for fast tests.
    max_rows: int | None = None
    #: Train the simpler models and the baselines for the comparison.
    compare: bool = True
    baseline_trees: int = 100
    baseline_depth: int = 20
    latency_calls: int = 200
    #: Rows of the batch latency measurement of the served predictor.
    batch_rows: int = 1000
    #: OpenMP/BLAS threads and forest jobs while fitting. One by default: on a
    #: shared machine (CI, gunicorn workers, other jobs) thread teams busy-wait for
    #: descheduled threads and run several times slower than a single thread.
    n_threads: int = 1


#: A small, quick configuration for tests (a few thousand rows, few iterations).
FAST_CONFIG = TrainConfig(
    max_rows=3000,
    max_iter=40,
    hgb_settings=("peu_profond",),
    cv_folds=2,
    baseline_trees=10,
    latency_calls=5,
    batch_rows=100,
)


#: Tree settings of the gradient boosting, compared on the validation rows. Shallow
#: trees suit effects that mostly add up (period, energy, altitude) and keep the
#: compiled evaluation short (one numpy step per level).
HGB_SETTINGS: dict[str, dict[str, Any]] = {
    "peu_profond": {"max_leaf_nodes": 8, "max_depth": 4, "learning_rate": 0.15},
    "profond": {"max_leaf_nodes": 31, "max_depth": None, "learning_rate": 0.1},
}


#: Training at startup (TRAIN_IF_MISSING): the served models only, no comparison,
#: so the app answers with models sooner; `flask ml train` gives the full report.
STARTUP_CONFIG = TrainConfig(compare=False, cv_folds=0, latency_calls=20)


@dataclass
class Dataset:
    """Usable DPE rows: features, harmonised targets and context columns."""

    features: pd.DataFrame
    targets: pd.DataFrame
    dates: pd.Series
    cost: pd.Series
    dropped: dict[str, int]


# --------------------------------------------------------------------------- data


def prepare_dataset(dpe: pd.DataFrame, config: TrainConfig) -> Dataset:
    """Select the usable rows of the DPE table and build features and targets."""
    dropped: dict[str, int] = {}
    frame = dpe
    checks = (
        (
            "building DPE (immeuble) or unknown type",
            lambda f: ~f["type_batiment"].isin(F.BATIMENTS),
        ),
        ("missing surface", lambda f: f["surface_habitable_logement"].isna()),
        ("missing date", lambda f: f["date_etablissement_dpe"].isna()),
    )
    for reason, check in checks:
        mask = check(frame).to_numpy(dtype=bool)
        if mask.any():
            dropped[reason] = int(mask.sum())
            frame = frame[~mask]
    if config.max_rows is not None and len(frame) > config.max_rows:
        frame = frame.sample(config.max_rows, random_state=config.seed)
    frame = frame.sort_values("date_etablissement_dpe", kind="stable")

    features = F.frame_features(frame)
    targets = F.harmonised_targets(frame)
    return Dataset(
        features=features.reset_index(drop=True),
        targets=targets.reset_index(drop=True),
        dates=frame["date_etablissement_dpe"].reset_index(drop=True),
        cost=pd.to_numeric(frame["cout_total_5_usages"], errors="coerce").reset_index(
            drop=True
        ),
        dropped=dropped,
    )


def time_split(dates: pd.Series, months: int) -> np.ndarray:
    """Return the mask of the test rows: the last `months` calendar months."""
    last = dates.max()
    cutoff = (last.to_period("M") - (months - 1)).start_time
    test = (dates >= cutoff).to_numpy()
    share = test.mean()
    if share < 0.05 or share > 0.5:
        # Too few or too many recent rows: hold out the most recent 15 % instead.
        cutoff = dates.quantile(0.85)
        test = (dates > cutoff).to_numpy()
    return test


def category_lists(features: pd.DataFrame) -> list[list[str]]:
    """Return, per categorical feature, its values seen often enough (sorted)."""
    lists = []
    for name in F.CATEGORICAL:
        counts = features[name].value_counts()
        lists.append(sorted(str(v) for v in counts[counts >= MIN_CATEGORY_ROWS].index))
    return lists


# --------------------------------------------------------------------------- models


def ordinal_prepare(categories: list[list[str]]) -> ColumnTransformer:
    """Categories as integer codes (unknown or missing: NaN), numbers as they are."""
    return ColumnTransformer(
        [
            (
                "categories",
                OrdinalEncoder(
                    categories=categories,
                    handle_unknown="use_encoded_value",
                    unknown_value=np.nan,
                    encoded_missing_value=np.nan,
                ),
                list(F.CATEGORICAL),
            ),
            ("numbers", "passthrough", list(F.NUMERIC)),
        ]
    )


def onehot_prepare(categories: list[list[str]], scale: bool) -> ColumnTransformer:
    """One-hot categories (missing as its own column), imputed numbers."""
    numbers: list[tuple[str, Any]] = [
        ("impute", SimpleImputer(strategy="median", add_indicator=True))
    ]
    if scale:
        numbers.append(("scale", StandardScaler()))
    return ColumnTransformer(
        [
            (
                "categories",
                Pipeline(
                    [
                        (
                            "impute",
                            SimpleImputer(strategy="constant", fill_value="manquant"),
                        ),
                        (
                            "onehot",
                            OneHotEncoder(
                                categories=[[*c, "manquant"] for c in categories],
                                handle_unknown="ignore",
                            ),
                        ),
                    ]
                ),
                list(F.CATEGORICAL),
            ),
            ("numbers", Pipeline(numbers), list(F.NUMERIC)),
        ]
    )


def _hgb_options(config: TrainConfig, setting: str | None = None) -> dict:
    return {
        **HGB_SETTINGS[setting or config.hgb_settings[0]],
        "categorical_features": list(range(len(F.CATEGORICAL))),
        "max_iter": config.max_iter,
        "early_stopping": True,
        "validation_fraction": 0.1,
        "n_iter_no_change": 15,
        "random_state": config.seed,
    }


def hgb_classifier(categories, config: TrainConfig, setting: str | None = None):
    """HistGradientBoosting on category codes (calibrated later on validation)."""
    return Pipeline(
        [
            ("prepare", ordinal_prepare(categories)),
            ("model", HistGradientBoostingClassifier(**_hgb_options(config, setting))),
        ]
    )


def calibrate(model: Pipeline, X_val: pd.DataFrame, y_val: np.ndarray) -> Pipeline:
    """Return the fitted pipeline with its trees frozen and temperature-scaled."""
    # Temperature scaling has one parameter and keeps the most probable class, so
    # the label metrics of the uncalibrated trees (cross-validation) still hold.
    prepare = model.named_steps["prepare"]
    calibrated = CalibratedClassifierCV(
        FrozenEstimator(model.named_steps["model"]), method="temperature"
    )
    calibrated.fit(prepare.transform(X_val), y_val)
    return Pipeline([("prepare", prepare), ("model", calibrated)])


def hgb_regressor(
    categories,
    config: TrainConfig,
    quantile: float | None = None,
    setting: str | None = None,
):
    """HistGradientBoosting regressor (squared error, or quantile loss)."""
    options = _hgb_options(config, setting)
    if quantile is not None:
        options.update(loss="quantile", quantile=quantile)
    return Pipeline(
        [
            ("prepare", ordinal_prepare(categories)),
            ("model", HistGradientBoostingRegressor(**options)),
        ]
    )


def candidate_classifiers(categories, config: TrainConfig) -> dict[str, Pipeline]:
    """The simpler label classifiers and the baselines compared with the trees."""
    candidates: dict[str, Pipeline] = {}
    if config.compare:
        candidates["regression_logistique"] = Pipeline(
            [
                ("prepare", onehot_prepare(categories, scale=True)),
                (
                    "model",
                    LogisticRegression(max_iter=300, C=1.0, random_state=config.seed),
                ),
            ]
        )
        candidates["baseline_foret_aleatoire"] = forest_baseline(
            RandomForestClassifier, categories, config
        )
        candidates["baseline_classe_majoritaire"] = Pipeline(
            [
                ("prepare", ordinal_prepare(categories)),
                ("model", DummyClassifier(strategy="most_frequent")),
            ]
        )
    return candidates


def forest_baseline(forest: type, categories, config: TrainConfig) -> Pipeline:
    """A random forest on one-hot features: the original app's kind of model."""
    model = forest(
        n_estimators=config.baseline_trees,
        max_depth=config.baseline_depth,
        n_jobs=config.n_threads,
        random_state=config.seed,
    )
    return Pipeline(
        [("prepare", onehot_prepare(categories, scale=False)), ("model", model)]
    )


def candidate_regressors(
    categories, config: TrainConfig, target: str, setting: str
) -> dict[str, Pipeline]:
    """The regressors compared for one target; the first one is served."""
    candidates = {"hgb": hgb_regressor(categories, config, setting=setting)}
    if config.compare:
        candidates["ridge"] = Pipeline(
            [
                ("prepare", onehot_prepare(categories, scale=True)),
                ("model", Ridge(alpha=1.0)),
            ]
        )
        if target == "conso_ep":
            candidates["baseline_foret_aleatoire"] = forest_baseline(
                RandomForestRegressor, categories, config
            )
        candidates["baseline_moyenne"] = Pipeline(
            [
                ("prepare", ordinal_prepare(categories)),
                ("model", DummyRegressor(strategy="mean")),
            ]
        )
    return candidates


# --------------------------------------------------------------------------- measures


def artifact_bytes(model: Any) -> int:
    """Return the size of a model serialised with joblib (as persisted)."""
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getbuffer().nbytes


def latency_ms(call: Callable[[], Any], calls: int) -> dict:
    """Return p50/p99 wall time of a call in milliseconds, after a warm-up."""
    for _ in range(min(10, calls)):
        call()
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return {
        "p50": round(float(np.percentile(times, 50)), 4),
        "p99": round(float(np.percentile(times, 99)), 4),
        "calls": calls,
    }


def _single_thread(model: Pipeline) -> Pipeline:
    """Set forests to one job for latency: a pool is slower for one row."""
    step = model.named_steps["model"]
    if hasattr(step, "n_jobs"):
        step.set_params(n_jobs=1)
    return model


# --------------------------------------------------------------------------- training


@dataclass
class TrainResult:
    """The served models, their metadata and the full report."""

    models: dict[str, Pipeline]
    metadata: dict
    report: dict
    predictor: Predictor


def train(
    dpe: pd.DataFrame,
    communes: pd.DataFrame,
    source: dict,
    config: TrainConfig = TrainConfig(),
) -> TrainResult:
    """Train every model on a DPE table and measure them; nothing is written."""
    with threadpool_limits(limits=config.n_threads):
        return _train(dpe, communes, source, config)


def _train(dpe, communes, source, config: TrainConfig) -> TrainResult:
    started = time.perf_counter()
    data = prepare_dataset(dpe, config)
    test = time_split(data.dates, config.test_months)
    dev_index = np.flatnonzero(~test)
    labels = data.targets["etiquette_dpe"].astype(str)
    stratify = labels.iloc[dev_index]
    if stratify.value_counts().min() < 2:
        stratify = None
    fit_index, val_index = train_test_split(
        dev_index,
        test_size=config.validation_share,
        random_state=config.seed,
        stratify=stratify,
    )
    fit_index = np.sort(fit_index)
    test_index = np.flatnonzero(test)
    logger.info(
        "training on %d rows (%d fit, %d validation, %d test from %s)",
        len(data.features),
        len(fit_index),
        len(val_index),
        len(test_index),
        data.dates.iloc[test_index].min().date(),
    )

    categories = category_lists(data.features.iloc[fit_index])
    X_fit = F.mask_optional(data.features.iloc[fit_index], config.seed)
    X_val = data.features.iloc[val_index]
    X_test = data.features.iloc[test_index]
    y = data.targets

    report: dict[str, Any] = {"performance": {}}
    served: dict[str, Pipeline] = {}

    classification = _train_classifiers(
        categories,
        config,
        X_fit,
        y.iloc[fit_index],
        X_val,
        y.iloc[val_index],
        X_test,
        y.iloc[test_index],
        report,
        served,
    )
    regression = _train_regressors(
        categories,
        config,
        X_fit,
        y.iloc[fit_index],
        X_val,
        y.iloc[val_index],
        X_test,
        y.iloc[test_index],
        report,
        served,
        classification["_setting"],
    )
    classification.pop("_setting")
    report["classification"] = classification
    report["regression"] = regression

    threshold = classification.pop("_threshold")
    offset = regression.pop("_offset")
    metadata = build_metadata(
        served,
        data,
        categories,
        communes,
        dpe,
        source,
        config,
        threshold,
        offset,
        test_index,
        fit_index,
        val_index,
    )
    predictor = Predictor(served, metadata)
    _served_report(predictor, data, test_index, report)
    logger.info("served predictor measured; random cross-validation next")
    report["cross_validation"] = _cross_validate(
        categories,
        config,
        data,
        dev_index,
        report["classification"]["hgb_settings"]["chosen"],
    )
    report["performance"]["serving"] = _serving_performance(
        predictor, data, test_index, config
    )
    report["training_seconds_total"] = round(time.perf_counter() - started, 1)
    # Timings depend on what else runs: keep the load next to them.
    report["machine"] = {
        "cpu_count": os.cpu_count(),
        "load_average_1_5_15_min": [round(v, 2) for v in os.getloadavg()],
    }
    report["data"] = metadata["training_data"]
    report["config"] = asdict(config)
    report["model_version"] = metadata["model_version"]
    report["created_at"] = metadata["created_at"]
    report["library_versions"] = metadata["library_versions"]
    report["features"] = {
        "categorical": list(F.CATEGORICAL),
        "numeric": list(F.NUMERIC),
        "masked_in_training": F.MASK_RATES,
    }
    report["prices"] = costs.price_table()
    report["comparison"] = _comparison(report)
    report["goals"] = quality_goals(report, source.get("origin"))
    metadata["metrics"] = _headline(report)
    return TrainResult(served, metadata, report, predictor)


def _fit_timed(model: Pipeline, X, y) -> float:
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(X, y)
    for warning in caught:
        if issubclass(warning.category, ConvergenceWarning):
            # A comparison model stopped early: its figures are reported as they are.
            logger.warning("%s: %s", model.steps[-1][0], warning.message)
        else:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    return time.perf_counter() - started


def _train_classifiers(
    categories, config, X_fit, y_fit, X_val, y_val, X_test, y_test, report, served
) -> dict:
    result: dict[str, Any] = {"validation": {}, "test": {}, "passoire_test": {}}
    threshold = 0.5
    labels_fit = y_fit["etiquette_dpe"].astype(str).to_numpy()
    labels_val = y_val["etiquette_dpe"].astype(str).to_numpy()

    # The tree settings compete on validation log-loss; the best one is calibrated.
    selection: dict[str, dict] = {}
    fitted: dict[str, tuple[Pipeline, float]] = {}
    for setting in config.hgb_settings:
        model = hgb_classifier(categories, config, setting)
        seconds = _fit_timed(model, X_fit, labels_fit)
        proba = model.predict_proba(X_val)
        selection[setting] = {
            "validation_log_loss": round(
                float(skm.log_loss(labels_val, proba, labels=model.classes_)), 4
            ),
            "validation_accuracy": round(
                float(np.mean(model.classes_[proba.argmax(axis=1)] == labels_val)), 4
            ),
            "iterations": int(model.named_steps["model"].n_iter_),
            "train_seconds": round(seconds, 2),
        }
        fitted[setting] = (model, seconds)
        logger.info("trees %s on validation: %s", setting, selection[setting])
    best = min(selection, key=lambda k: selection[k]["validation_log_loss"])
    result["hgb_settings"] = {
        "compared": selection,
        "chosen": best,
        **HGB_SETTINGS[best],
    }
    trees, seconds = fitted[best]
    started = time.perf_counter()
    ordered = {
        "hgb_calibre": (calibrate(trees, X_val, labels_val), None),
        "hgb_non_calibre": (trees, seconds),
        **{n: (m, None) for n, m in candidate_classifiers(categories, config).items()},
    }
    calibration_seconds = time.perf_counter() - started

    for name, (model, seconds) in ordered.items():
        if name == "hgb_calibre":
            seconds = fitted[best][1] + calibration_seconds
        elif seconds is None:
            seconds = _fit_timed(model, X_fit, labels_fit)
        classes = [str(c) for c in model.classes_]
        columns = [classes.index(c) for c in rules.PASSOIRE_LABELS if c in classes]

        def passoire(X, model=model, columns=columns):
            return model.predict_proba(X)[:, columns].sum(axis=1)

        val_labels = model.predict(X_val)
        test_proba = model.predict_proba(X_test)
        test_labels = np.asarray(classes, dtype=object)[test_proba.argmax(axis=1)]
        model_threshold = M.threshold_for_recall(
            y_val["etiquette_dpe"], passoire(X_val), PASSOIRE_MIN_RECALL
        )
        result["validation"][name] = M.classification_metrics(
            y_val["etiquette_dpe"], val_labels
        )
        result["test"][name] = M.classification_metrics(
            y_test["etiquette_dpe"], test_labels
        )
        result["test"][name]["calibration"] = M.calibration_metrics(
            y_test["etiquette_dpe"], test_proba, classes
        )
        result["passoire_test"][name] = M.passoire_metrics(
            y_test["etiquette_dpe"],
            test_proba[:, columns].sum(axis=1),
            model_threshold,
        )
        one_row = X_test.iloc[:1]
        _single_thread(model)
        report["performance"][f"classifier/{name}"] = {
            "train_seconds": round(seconds, 2),
            "size_bytes": artifact_bytes(model),
            "latency_one_row_ms": latency_ms(
                lambda m=model, x=one_row: m.predict_proba(x), config.latency_calls
            ),
        }
        if not served:
            served[CLASSIFIER] = model
            threshold = model_threshold
        logger.info(
            "classifier %s: test accuracy %.3f in %.1f s",
            name,
            result["test"][name]["accuracy"],
            seconds,
        )
    result["served"] = next(iter(result["test"]))
    result["_threshold"] = threshold
    result["_setting"] = best
    return result


def _train_regressors(
    categories,
    config,
    X_fit,
    y_fit,
    X_val,
    y_val,
    X_test,
    y_test,
    report,
    served,
    setting,
) -> dict:
    result: dict[str, Any] = {}
    surface_test = X_test["surface_habitable_logement"].to_numpy()
    for target in ("conso_ep", "emission_ges"):
        column = REGRESSION_TARGETS[target]
        known = y_fit[column].notna().to_numpy()
        entry: dict[str, Any] = {"target": column, "test": {}}
        candidates = candidate_regressors(categories, config, target, setting)
        for name, model in candidates.items():
            seconds = _fit_timed(model, X_fit[known], y_fit[column].to_numpy()[known])
            prediction = model.predict(X_test)
            entry["test"][name] = M.regression_metrics(
                y_test[column], prediction, surface_test
            )
            one_row = X_test.iloc[:1]
            _single_thread(model)
            report["performance"][f"{target}/{name}"] = {
                "train_seconds": round(seconds, 2),
                "size_bytes": artifact_bytes(model),
                "latency_one_row_ms": latency_ms(
                    lambda m=model, x=one_row: m.predict(x), config.latency_calls
                ),
            }
            if target not in served:
                served[target] = model
            logger.info(
                "%s %s: test R² %s in %.1f s",
                target,
                name,
                entry["test"][name].get("r2"),
                seconds,
            )
        entry["served"] = next(iter(entry["test"]))
        result[target] = entry

    # Quantile models of the consumption, then the conformal widening on validation.
    column = REGRESSION_TARGETS["conso_ep"]
    known = y_fit[column].notna().to_numpy()
    for name, quantile in QUANTILES.items():
        model = hgb_regressor(categories, config, quantile, setting)
        seconds = _fit_timed(model, X_fit[known], y_fit[column].to_numpy()[known])
        served[name] = model
        logger.info("%s fitted in %.1f s", name, seconds)
        report["performance"][f"{name}/hgb"] = {
            "train_seconds": round(seconds, 2),
            "size_bytes": artifact_bytes(model),
        }

    def bounds(X):
        q = np.sort(
            np.column_stack(
                [
                    served[n].predict(X)
                    for n in ("conso_ep_q10", "conso_ep_q50", "conso_ep_q90")
                ]
            ),
            axis=1,
        )
        return q[:, 0], q[:, 2]

    val_low, val_high = bounds(X_val)
    offset = M.conformal_offset(y_val[column], val_low, val_high, INTERVAL_LEVEL)
    raw_test = [served[n].predict(X_test) for n in QUANTILES]
    crossing = np.mean((raw_test[0] > raw_test[1]) | (raw_test[1] > raw_test[2]))
    test_low, test_high = bounds(X_test)
    result["interval"] = {
        "level": INTERVAL_LEVEL,
        "conformal_offset": round(offset, 3),
        "quantile_crossing_share_test": round(float(crossing), 4),
        "test_raw_quantiles": M.interval_metrics(y_test[column], test_low, test_high),
    }
    result["_offset"] = offset
    return result


def _served_report(predictor: Predictor, data: Dataset, test_index, report) -> None:
    """Measure the served predictor end to end on the test rows."""
    X_test = data.features.iloc[test_index]
    y_test = data.targets.iloc[test_index]
    out = predictor.predict_frame(X_test)
    labels = np.asarray(predictor.classes, dtype=object)[out["proba"].argmax(axis=1)]
    truth = y_test["etiquette_dpe"].astype(str).to_numpy()
    surface = X_test["surface_habitable_logement"].to_numpy()

    interval = M.interval_metrics(
        y_test["conso_5_usages_par_m2_ep"], out["conso_ep_q10"], out["conso_ep_q90"]
    )
    report["regression"]["interval"]["test"] = interval
    report["passoire"] = {
        "threshold": round(predictor.passoire_threshold, 4),
        "min_recall_on_validation": PASSOIRE_MIN_RECALL,
        "test": M.passoire_metrics(
            truth, out["passoire_probability"], predictor.passoire_threshold
        ),
    }
    derived = rules.etiquette_dpe_array(
        out["conso_ep"],
        out["emission_ges"],
        surface,
        X_test["zone_climatique"].to_numpy(),
        X_test["classe_altitude"].to_numpy(),
        None,
    )
    report["derived_label"] = {
        "agreement_with_classifier": round(float(np.mean(derived == labels)), 4),
        "accuracy": round(float(np.mean(derived == truth)), 4),
        "metrics": M.classification_metrics(truth, derived),
    }
    report["cost"] = costs.compare_with_dpe(
        out["conso_ep"],
        surface,
        X_test["type_energie_principale_chauffage"],
        data.cost.iloc[test_index].to_numpy(),
    )
    report["groups"] = group_metrics(X_test, y_test, labels, out, predictor)


def group_metrics(X, y, labels, out, predictor: Predictor) -> dict:
    """Return the served models' metrics per building type and altitude class."""
    groups: dict[str, dict] = {}
    truth = y["etiquette_dpe"].astype(str).to_numpy()
    for column in ("type_batiment", "classe_altitude"):
        groups[column] = {}
        values = X[column].astype("object").fillna("inconnu").to_numpy()
        for value in sorted(set(values)):
            mask = values == value
            entry = M.classification_metrics(truth[mask], labels[mask])
            entry.pop("confusion_matrix")
            entry["passoire"] = M.passoire_metrics(
                truth[mask],
                out["passoire_probability"][mask],
                predictor.passoire_threshold,
            )
            entry["conso_ep"] = M.regression_metrics(
                y["conso_5_usages_par_m2_ep"].to_numpy()[mask],
                out["conso_ep"][mask],
                X["surface_habitable_logement"].to_numpy()[mask],
            )
            entry["interval"] = M.interval_metrics(
                y["conso_5_usages_par_m2_ep"].to_numpy()[mask],
                out["conso_ep_q10"][mask],
                out["conso_ep_q90"][mask],
            )
            groups[column][str(value)] = entry
    return groups


def _cross_validate(
    categories, config: TrainConfig, data: Dataset, dev_index, setting: str
) -> dict:
    """Random stratified K-fold on the pre-test rows (uncalibrated served trees)."""
    if config.cv_folds < 2:
        return {}
    labels = data.targets["etiquette_dpe"].astype(str).to_numpy()
    ep = data.targets["conso_5_usages_par_m2_ep"].to_numpy()
    folds = StratifiedKFold(config.cv_folds, shuffle=True, random_state=config.seed)
    scores: dict[str, list[float]] = {
        "accuracy": [],
        "macro_f1": [],
        "within_one_class": [],
        "conso_ep_r2": [],
    }
    hgb = Pipeline(
        [
            ("prepare", ordinal_prepare(categories)),
            ("model", HistGradientBoostingClassifier(**_hgb_options(config, setting))),
        ]
    )
    for fold, (train_part, test_part) in enumerate(
        folds.split(dev_index, labels[dev_index])
    ):
        fit_rows, eval_rows = dev_index[train_part], dev_index[test_part]
        X_fit = F.mask_optional(data.features.iloc[fit_rows], config.seed + fold + 1)
        X_eval = data.features.iloc[eval_rows]
        classifier = clone(hgb).fit(X_fit, labels[fit_rows])
        found = M.classification_metrics(labels[eval_rows], classifier.predict(X_eval))
        for key in ("accuracy", "macro_f1", "within_one_class"):
            scores[key].append(found[key])
        known = np.isfinite(ep[fit_rows])
        regressor = hgb_regressor(categories, config, setting=setting).fit(
            X_fit[known], ep[fit_rows][known]
        )
        found = M.regression_metrics(ep[eval_rows], regressor.predict(X_eval))
        scores["conso_ep_r2"].append(found["r2"])
    return {
        "folds": config.cv_folds,
        **{
            key: {
                "mean": round(float(np.mean(v)), 4),
                "std": round(float(np.std(v)), 4),
            }
            for key, v in scores.items()
        },
    }


def _serving_performance(predictor: Predictor, data: Dataset, test_index, config):
    """Measure the served predictor: one row from a dict, then 1,000 rows."""
    rows = serving_rows(data.features.iloc[test_index], config.batch_rows)
    one = rows[0]
    batch_calls = max(3, config.latency_calls // 30)
    return {
        "one_row_ms": latency_ms(lambda: predictor.predict(one), config.latency_calls),
        "batch_ms": latency_ms(lambda: predictor.predict_batch(rows), batch_calls),
        "batch_rows": len(rows),
        "compiled_trees": predictor.forest.n_trees,
        "fast_path": predictor.fast,
    }


def serving_rows(features: pd.DataFrame, n: int) -> list[dict]:
    """Return n dwelling feature rows as the dicts a form would send (repeating)."""
    rows = []
    features = features[features["type_batiment"].notna()]
    sample = features.head(n) if len(features) >= n else features
    while len(rows) < n and len(sample):
        for record in sample.to_dict("records"):
            row = {k: v for k, v in record.items() if not _is_missing(v)}
            row.setdefault("zone_climatique", "H1c")
            row.setdefault("altitude", 500.0)
            rows.append(row)
            if len(rows) >= n:
                break
    return rows


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _comparison(report: dict) -> dict:
    """Tell whether the served models beat both baselines on the test set."""
    tests = report["classification"]["test"]
    served = report["classification"]["served"]
    result: dict[str, Any] = {}
    for baseline in ("baseline_classe_majoritaire", "baseline_foret_aleatoire"):
        if baseline in tests:
            result[f"classifier_vs_{baseline}"] = {
                "macro_f1": [tests[served]["macro_f1"], tests[baseline]["macro_f1"]],
                "accuracy": [tests[served]["accuracy"], tests[baseline]["accuracy"]],
                "beats": tests[served]["macro_f1"] > tests[baseline]["macro_f1"]
                and tests[served]["accuracy"] >= tests[baseline]["accuracy"],
            }
    regression = report["regression"]["conso_ep"]["test"]
    for baseline in ("baseline_moyenne", "baseline_foret_aleatoire"):
        if baseline in regression:
            result[f"conso_ep_vs_{baseline}"] = {
                "r2": [regression["hgb"]["r2"], regression[baseline]["r2"]],
                "mae": [regression["hgb"]["mae"], regression[baseline]["mae"]],
                "beats": regression["hgb"]["r2"] > regression[baseline]["r2"],
            }
    result["all_beaten"] = bool(result) and all(
        v["beats"] for v in result.values() if isinstance(v, dict)
    )
    return result


def quality_goals(report: dict, origin: str | None) -> list[dict]:
    """Return the real-data quality goals with the values of this run."""
    served = report["classification"]["served"]
    test = report["classification"]["test"][served]
    passoire = report["passoire"]["test"]
    interval = report["regression"]["interval"]["test"]
    r2 = report["regression"]["conso_ep"]["test"]["hgb"].get("r2")
    coverage = interval.get("coverage")
    goals = [
        ("passoire ROC-AUC", ">= 0.95", passoire["roc_auc"], lambda v: v >= 0.95),
        ("passoire F1", ">= 0.70", passoire["f1"], lambda v: v >= 0.70),
        ("label accuracy", ">= 0.65", test["accuracy"], lambda v: v >= 0.65),
        ("within one class", ">= 0.95", test["within_one_class"], lambda v: v >= 0.95),
        ("kWh/m²/an R²", ">= 0.65", r2, lambda v: v >= 0.65),
        (
            "interval coverage (nominal 0.80)",
            "0.77 to 0.83",
            coverage,
            lambda v: abs(v - INTERVAL_LEVEL) <= 0.03,
        ),
        (
            "calibration error (top label)",
            "<= 0.05",
            test["calibration"]["ece_top_label"],
            lambda v: v <= 0.05,
        ),
    ]
    return [
        {
            "goal": goal,
            "target": target,
            "value": value,
            "met": None if value is None else bool(check(value)),
            "data_origin": origin,
            "applies": origin != "demo",
        }
        for goal, target, value, check in goals
    ]


def _headline(report: dict) -> dict:
    served = report["classification"]["served"]
    test = report["classification"]["test"][served]
    return {
        "accuracy": test["accuracy"],
        "balanced_accuracy": test["balanced_accuracy"],
        "macro_f1": test["macro_f1"],
        "within_one_class": test["within_one_class"],
        "ece_top_label": test["calibration"]["ece_top_label"],
        "passoire_roc_auc": report["passoire"]["test"]["roc_auc"],
        "passoire_f1": report["passoire"]["test"]["f1"],
        "passoire_recall": report["passoire"]["test"]["recall"],
        "conso_ep_r2": report["regression"]["conso_ep"]["test"]["hgb"].get("r2"),
        "conso_ep_mae": report["regression"]["conso_ep"]["test"]["hgb"].get("mae"),
        "interval_coverage": report["regression"]["interval"]["test"]["coverage"],
        "emission_ges_r2": report["regression"]["emission_ges"]["test"]["hgb"].get(
            "r2"
        ),
        "derived_label_agreement": report["derived_label"]["agreement_with_classifier"],
    }


# --------------------------------------------------------------------------- metadata


def build_locations(communes: pd.DataFrame, dpe: pd.DataFrame) -> dict[str, dict]:
    """Return per commune of the DPE's department(s) the location features."""
    frame = communes.copy()
    departments = set(dpe["code_departement_ban"].dropna().astype(str)) or {"74"}
    frame = frame[frame["dep_code"].astype(str).isin(departments)]
    codes = dpe["code_insee_ban"].astype("object")
    modes = {}
    for column in ("zone_climatique", "classe_altitude"):
        values = dpe[column].astype("object")
        pairs = pd.DataFrame({"code": codes, "value": values}).dropna()
        modes[column] = pairs.groupby("code")["value"].agg(
            lambda s: s.value_counts().index[0]
        )
    all_zones = dpe["zone_climatique"].dropna()
    default_zone = str(all_zones.mode().iloc[0]) if len(all_zones) else None

    locations = {}
    for row in frame.itertuples(index=False):
        code = str(row.code_insee)
        altitude = _float(getattr(row, "altitude_moyenne", None))
        if altitude is None:
            low = _float(getattr(row, "altitude_minimale", None))
            high = _float(getattr(row, "altitude_maximale", None))
            altitude = (
                (low + high) / 2 if low is not None and high is not None else None
            )
        classe = modes["classe_altitude"].get(
            code
        ) or rules.classe_altitude_from_altitude(altitude)
        postal = str(
            getattr(row, "codes_postaux", "") or getattr(row, "code_postal", "")
        )
        locations[code] = {
            "nom": str(row.nom_standard),
            "codes_postaux": [
                p.strip().zfill(5) for p in postal.split(",") if p.strip()
            ],
            "altitude": altitude,
            "densite": _float(getattr(row, "densite", None)),
            "zone_climatique": modes["zone_climatique"].get(code) or default_zone,
            "classe_altitude": classe,
            "latitude": _float(row.latitude_centre),
            "longitude": _float(row.longitude_centre),
            "population": int(_float(getattr(row, "population", 0)) or 0),
        }
    return locations


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def build_metadata(
    served,
    data: Dataset,
    categories,
    communes,
    dpe,
    source,
    config,
    threshold,
    offset,
    test_index,
    fit_index,
    val_index,
) -> dict:
    """Return the metadata of a model version (artifact hashes added on save)."""
    created = datetime.now(UTC).replace(microsecond=0)
    numeric = {}
    for name in F.NUMERIC:
        values = data.features[name].dropna()
        numeric[name] = {
            "min": float(values.min()) if len(values) else 0.0,
            "max": float(values.max()) if len(values) else 1.0,
        }
    dates = data.dates
    return {
        "model_version": created.strftime("%Y%m%dT%H%M%SZ"),
        "created_at": created.isoformat(),
        "training_command": " ".join(sys.argv) or "ml.train",
        "library_versions": library_versions(),
        "features": {
            "order": list(F.FEATURES),
            "categorical": dict(zip(F.CATEGORICAL, categories, strict=True)),
            "numeric": numeric,
        },
        "targets": {
            CLASSIFIER: "etiquette_dpe (règles en vigueur)",
            **{name: REGRESSION_TARGETS[name] for name in REGRESSION_TARGETS},
        },
        "training_data": {
            "origin": source.get("origin"),
            "sha256": source.get("sha256"),
            "path": source.get("path"),
            "updated_at": source.get("updated_at"),
            "rows_in_store": int(len(dpe)),
            "rows_used": int(len(data.features)),
            "dropped": data.dropped,
            "date_min": str(dates.min().date()),
            "date_max": str(dates.max().date()),
            "test_from": str(dates.iloc[test_index].min().date()),
            "rows_fit": int(len(fit_index)),
            "rows_validation": int(len(val_index)),
            "rows_test": int(len(test_index)),
            "labels_restated_share": round(
                float(
                    (
                        data.targets["etiquette_dpe"]
                        != data.targets["etiquette_dpe_enregistree"]
                    ).mean()
                ),
                4,
            ),
        },
        "passoire_threshold": float(threshold),
        "interval": {"level": INTERVAL_LEVEL, "offset": float(offset)},
        "locations": build_locations(communes, dpe),
        "prices": costs.price_table(),
        "config": asdict(config),
        "artifacts": {},
    }


# --------------------------------------------------------------------------- commands


def train_from_app(
    app,
    config: TrainConfig = TrainConfig(),
    report_dir: Path | None = None,
) -> TrainResult:
    """Train on the app's DPE data, save into its models folder, write the report."""
    from ml import registry
    from ml import report as report_module

    store = app.extensions["store"]
    source = dict(store.sources["dpe"])
    result = train(store.dpe, store.communes, source, config)
    folder = registry.models_dir(app)
    registry.save(result.models, result.metadata, folder)
    if report_dir is not None:
        report_module.write(result.report, Path(report_dir))
    models = app.extensions.get("models")
    if models is not None:
        models.reload()
    return result


def main(argv: list[str] | None = None) -> int:
    """Command line: train on the data in service (``python -m ml.train``)."""
    parser = argparse.ArgumentParser(prog="python -m ml.train", description=__doc__)
    parser.add_argument("--report-dir", type=Path, default=REPORT_DIR)
    parser.add_argument("--no-report", action="store_true")
    parser.add_argument("--fast", action="store_true", help="small quick run")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from webapp import create_app

    app = create_app()
    config = replace(FAST_CONFIG if args.fast else TrainConfig(), seed=args.seed)
    result = train_from_app(app, config, None if args.no_report else args.report_dir)
    print(json.dumps(result.metadata["metrics"], indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
