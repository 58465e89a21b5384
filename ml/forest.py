"""A flat, vectorised evaluator of fitted HistGradientBoosting trees.

scikit-learn predicts one tree at a time with a Python-level call per tree, which
costs a few microseconds each: with several models of hundreds of trees, one row
takes milliseconds. Here every tree of every model is stacked into flat node
arrays and all trees walk one level per numpy step, so a row costs a few dozen
array operations. It reads the fitted trees through private attributes of
scikit-learn (`_predictors`, `_baseline_prediction`, `_bin_mapper`), so it is built
only for the library versions recorded with the models, and `CompiledForest.check`
compares it with scikit-learn's own predictions before it is used.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

logger = logging.getLogger(__name__)

#: Categories above this code cannot appear (HistGradientBoosting uses 8-bit bins).
MAX_CATEGORIES = 256

#: Table entries of a categorical split: right child, left child, unknown category.
_RIGHT, _LEFT, _UNKNOWN = 0, 1, 2


@dataclass
class _Output:
    """One output column: a name, its baseline and its slice of stacked trees."""

    name: str
    baseline: float
    start: int
    stop: int


class CompiledForest:
    """The trees of several fitted HistGradientBoosting models in flat arrays."""

    def __init__(self, models: Sequence[tuple[str, object]]):
        feature, threshold, missing_left = [], [], []
        left, right, value, cat_row = [], [], [], []
        tables: list[np.ndarray] = []
        roots: list[int] = []
        self.outputs: list[_Output] = []
        offset = 0
        depth = 0

        for name, model in models:
            known, f_idx_map = model._bin_mapper.make_known_categories_bitsets()
            baselines = np.ravel(model._baseline_prediction)
            per_output = len(baselines)
            names = (
                [f"{name}:{k}" for k in range(per_output)] if per_output > 1 else [name]
            )
            for k in range(per_output):
                start = len(roots)
                for iteration in model._predictors:
                    nodes = iteration[k].nodes
                    bitsets = iteration[k].raw_left_cat_bitsets
                    n = len(nodes)
                    roots.append(offset)
                    leaf = nodes["is_leaf"].astype(bool)
                    own = np.arange(offset, offset + n)
                    # Leaves point to themselves, so extra steps keep them in place.
                    left.append(np.where(leaf, own, nodes["left"] + offset))
                    right.append(np.where(leaf, own, nodes["right"] + offset))
                    feature.append(nodes["feature_idx"].astype(np.intp))
                    threshold.append(nodes["num_threshold"].astype(float))
                    missing_left.append(nodes["missing_go_to_left"].astype(bool))
                    value.append(np.where(leaf, nodes["value"], 0.0))
                    rows = np.full(n, -1, dtype=np.intp)
                    categorical = nodes["is_categorical"].astype(bool) & ~leaf
                    for index in np.flatnonzero(categorical):
                        rows[index] = len(tables)
                        tables.append(
                            _category_table(
                                bitsets,
                                int(nodes["bitset_idx"][index]),
                                known,
                                int(f_idx_map[nodes["feature_idx"][index]]),
                            )
                        )
                    cat_row.append(rows)
                    depth = max(depth, int(nodes["depth"].max()))
                    offset += n
                self.outputs.append(
                    _Output(names[k], float(baselines[k]), start, len(roots))
                )

        self.feature = np.concatenate(feature)
        self.threshold = np.concatenate(threshold)
        self.missing_left = np.concatenate(missing_left)
        self.left = np.concatenate(left)
        self.right = np.concatenate(right)
        self.value = np.concatenate(value)
        self.cat_row = np.concatenate(cat_row)
        self.is_categorical = self.cat_row >= 0
        self.tables = (
            np.vstack(tables)
            if tables
            else np.zeros((1, MAX_CATEGORIES), dtype=np.int8)
        )
        self.roots = np.asarray(roots, dtype=np.intp)
        self.depth = depth
        self.starts = np.asarray([o.start for o in self.outputs], dtype=np.intp)
        self.baselines = np.asarray([o.baseline for o in self.outputs])
        self.names = [o.name for o in self.outputs]

    @property
    def n_trees(self) -> int:
        """Number of stacked trees."""
        return len(self.roots)

    def raw(self, X: np.ndarray) -> np.ndarray:
        """Return the raw score of every output for each row of an encoded array."""
        X = np.asarray(X, dtype=float)
        n = X.shape[0]
        node = np.broadcast_to(self.roots, (n, self.n_trees)).copy()
        rows = np.arange(n)[:, None]

        for _ in range(self.depth):
            x = X[rows, self.feature[node]]
            missing = np.isnan(x)
            go_left = x <= self.threshold[node]
            categorical = self.is_categorical[node]
            if categorical.any():
                code = np.where(missing | (x < 0), 0, x).astype(np.intp)
                code = np.minimum(code, MAX_CATEGORIES - 1)
                entry = self.tables[np.maximum(self.cat_row[node], 0), code]
                # Negative codes and unknown categories follow the missing side.
                unknown = (entry == _UNKNOWN) | (x < 0)
                go_left = np.where(categorical, entry == _LEFT, go_left)
                missing = missing | (categorical & unknown)
            go_left = np.where(missing, self.missing_left[node], go_left)
            node = np.where(go_left, self.left[node], self.right[node])

        leaves = self.value[node]
        return np.add.reduceat(leaves, self.starts, axis=1) + self.baselines

    def check(self, models, X: np.ndarray, tolerance: float = 1e-8) -> float:
        """Return the largest gap to scikit-learn's raw predictions on X."""
        ours = self.raw(X)
        theirs = []
        for _, model in models:
            theirs.append(np.asarray(model._raw_predict(X)).reshape(len(X), -1))
        reference = np.hstack(theirs)
        gap = float(np.max(np.abs(ours - reference))) if len(X) else 0.0
        if gap > tolerance:
            logger.warning("compiled trees differ from scikit-learn by %.3g", gap)
        return gap


def native_raw(model, X: np.ndarray) -> np.ndarray:
    """Return a fitted model's raw scores on an already encoded array.

    This is scikit-learn's own tree loop without its input preprocessing (a
    ColumnTransformer that remaps category values). Use it only where that
    preprocessing was checked to leave the encoded array unchanged.
    """
    raw = np.zeros((len(X), model.n_trees_per_iteration_), order="F")
    raw += model._baseline_prediction
    model._predict_iterations(np.ascontiguousarray(X), model._predictors, raw, False, 1)
    return raw


def _category_table(
    bitsets: np.ndarray, row: int, known: np.ndarray, known_row: int
) -> np.ndarray:
    """Return, per category code, whether a categorical split goes left."""
    codes = np.arange(MAX_CATEGORIES)
    words, bits = codes // 32, codes % 32
    in_left = (bitsets[row, words] >> bits) & 1
    is_known = (known[known_row, words] >> bits) & 1
    table = np.where(in_left == 1, _LEFT, np.where(is_known == 1, _RIGHT, _UNKNOWN))
    return table.astype(np.int8)
