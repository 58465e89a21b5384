"""Metrics of the label classifier, the passoire decision and the regressors."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from webapp import rules

#: Bins of the reliability table (equal-width on the predicted probability).
CALIBRATION_BINS = 10


def _finite(value: float) -> float | None:
    value = float(value)
    return round(value, 4) if math.isfinite(value) else None


def classification_metrics(y_true: Sequence, y_pred: Sequence) -> dict:
    """Return accuracy, balanced accuracy, macro-F1, within-one and the confusion."""
    true = pd.Series(np.asarray(y_true, dtype=object))
    pred = pd.Series(np.asarray(y_pred, dtype=object))
    index = {label: i for i, label in enumerate(rules.LABELS)}
    distance = np.abs(true.map(index).to_numpy(float) - pred.map(index).to_numpy(float))
    present = [label for label in rules.LABELS if (true == label).any()]
    return {
        "n": int(len(true)),
        "accuracy": _finite(skm.accuracy_score(true, pred)),
        # Mean recall over the classes present (balanced accuracy), computed here
        # because scikit-learn warns on groups holding a single class.
        "balanced_accuracy": _finite(
            np.mean([np.mean(pred[true == label] == label) for label in present])
        )
        if present
        else None,
        "macro_f1": _finite(
            skm.f1_score(true, pred, labels=present, average="macro", zero_division=0)
        ),
        "within_one_class": _finite(np.mean(distance <= 1)),
        "confusion_matrix": {
            "labels": list(rules.LABELS),
            "rows_true_columns_predicted": skm.confusion_matrix(
                true, pred, labels=list(rules.LABELS)
            ).tolist(),
        },
    }


def passoire_metrics(y_true: Sequence, probability: Sequence, threshold: float) -> dict:
    """Return ROC-AUC, PR-AUC, F1, recall and precision of the F/G decision."""
    truth = np.isin(np.asarray(y_true, dtype=object), rules.PASSOIRE_LABELS)
    probability = np.asarray(probability, dtype=float)
    decided = probability >= threshold
    both = truth.any() and not truth.all()
    return {
        "n": int(len(truth)),
        "positives": int(truth.sum()),
        "threshold": _finite(threshold),
        "roc_auc": _finite(skm.roc_auc_score(truth, probability)) if both else None,
        "pr_auc": _finite(skm.average_precision_score(truth, probability))
        if truth.any()
        else None,
        "f1": _finite(skm.f1_score(truth, decided, zero_division=0)),
        "recall": _finite(skm.recall_score(truth, decided, zero_division=0)),
        "precision": _finite(skm.precision_score(truth, decided, zero_division=0)),
    }


def threshold_for_recall(
    y_true: Sequence, probability: Sequence, min_recall: float
) -> float:
    """Return the highest threshold whose recall reaches `min_recall`."""
    truth = np.isin(np.asarray(y_true, dtype=object), rules.PASSOIRE_LABELS)
    probability = np.asarray(probability, dtype=float)
    if not truth.any():
        return 0.5
    # Sorted positive scores: keeping the k highest gives recall k / positives.
    positives = np.sort(probability[truth])[::-1]
    needed = math.ceil(min_recall * len(positives))
    return float(positives[max(needed, 1) - 1])


def reliability(
    outcome: np.ndarray, confidence: np.ndarray, bins: int = CALIBRATION_BINS
) -> tuple[float | None, list[dict]]:
    """Return the expected calibration error and the reliability table."""
    outcome = np.asarray(outcome, dtype=float)
    confidence = np.asarray(confidence, dtype=float)
    if not len(outcome):
        return None, []
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        mask = which == b
        if not mask.any():
            continue
        mean_conf = float(confidence[mask].mean())
        observed = float(outcome[mask].mean())
        ece += mask.mean() * abs(mean_conf - observed)
        table.append(
            {
                "bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}",
                "n": int(mask.sum()),
                "mean_predicted": round(mean_conf, 4),
                "observed": round(observed, 4),
            }
        )
    return round(float(ece), 4), table


def calibration_metrics(
    y_true: Sequence, proba: np.ndarray, classes: Sequence[str]
) -> dict:
    """Return top-label and passoire calibration errors with reliability tables."""
    truth = np.asarray(y_true, dtype=object)
    classes = list(classes)
    top = proba.argmax(axis=1)
    correct = np.asarray(classes, dtype=object)[top] == truth
    ece, table = reliability(correct, proba.max(axis=1))
    columns = [classes.index(c) for c in rules.PASSOIRE_LABELS]
    passoire = np.isin(truth, rules.PASSOIRE_LABELS)
    passoire_ece, passoire_table = reliability(passoire, proba[:, columns].sum(1))
    return {
        "ece_top_label": ece,
        "reliability_top_label": table,
        "ece_passoire": passoire_ece,
        "reliability_passoire": passoire_table,
        "log_loss": _finite(
            skm.log_loss(truth, np.clip(proba, 1e-12, 1), labels=classes)
        ),
    }


def regression_metrics(
    y_true: Sequence, y_pred: Sequence, surface: Sequence | None = None
) -> dict:
    """Return R², MAE and RMSE per m² and, with the surface, per dwelling."""
    true = np.asarray(y_true, dtype=float)
    pred = np.asarray(y_pred, dtype=float)
    keep = np.isfinite(true) & np.isfinite(pred)
    true, pred = true[keep], pred[keep]
    result = {"n": int(len(true))}
    if len(true) < 2:
        return result
    result.update(
        {
            "r2": _finite(skm.r2_score(true, pred)),
            "mae": _finite(skm.mean_absolute_error(true, pred)),
            "rmse": _finite(math.sqrt(skm.mean_squared_error(true, pred))),
        }
    )
    if surface is not None:
        area = np.asarray(surface, dtype=float)[keep]
        result.update(
            {
                "r2_logement": _finite(skm.r2_score(true * area, pred * area)),
                "mae_logement": _finite(
                    skm.mean_absolute_error(true * area, pred * area)
                ),
                "rmse_logement": _finite(
                    math.sqrt(skm.mean_squared_error(true * area, pred * area))
                ),
            }
        )
    return result


def interval_metrics(y_true: Sequence, low: Sequence, high: Sequence) -> dict:
    """Return the coverage and mean width of prediction intervals."""
    true = np.asarray(y_true, dtype=float)
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    keep = np.isfinite(true)
    inside = (true[keep] >= low[keep]) & (true[keep] <= high[keep])
    return {
        "n": int(keep.sum()),
        "coverage": _finite(inside.mean()) if keep.any() else None,
        "mean_width": _finite((high[keep] - low[keep]).mean()) if keep.any() else None,
    }


def conformal_offset(
    y_true: Sequence, low: Sequence, high: Sequence, level: float
) -> float:
    """Return the split-conformal widening that gives `level` coverage (CQR)."""
    true = np.asarray(y_true, dtype=float)
    scores = np.maximum(np.asarray(low) - true, true - np.asarray(high))
    scores = np.sort(scores[np.isfinite(scores)])
    if not len(scores):
        return 0.0
    rank = min(math.ceil((len(scores) + 1) * level), len(scores))
    return float(scores[rank - 1])
