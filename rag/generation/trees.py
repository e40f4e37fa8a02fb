"""Gradient-boosted trees as data: a JSON forest scored with NumPy, no scikit-learn at answer time.

The format (written by ``rag.training.train.export_trees`` from scikit-learn's
``HistGradientBoostingClassifier``): ``{"kind": "trees", "baseline": b, "trees": [{"feature": [...],
"threshold": [...], "left": [...], "right": [...], "value": [...]}]}``, one list entry per node, a
leaf marked by ``feature == -1``; a row goes left when ``x[feature] <= threshold``. The logit is
``baseline + Σ value[leaf]``. Written here because scikit-learn can only pickle its models, and a
pickle is code, not data.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class Forest:
    """All trees flattened into one node table and walked together, one NumPy step per depth level."""

    def __init__(self, spec: dict[str, Any]) -> None:
        feats, thr, left, right, value, roots = [], [], [], [], [], []
        offset = 0
        for tree in spec["trees"]:
            n = len(tree["feature"])
            roots.append(offset)
            feats.extend(tree["feature"])
            thr.extend(tree["threshold"])
            # Children as global node numbers; a leaf points at itself so extra steps stay put.
            left.extend(offset + c if f >= 0 else offset + i for i, (c, f) in enumerate(zip(tree["left"], tree["feature"])))
            right.extend(offset + c if f >= 0 else offset + i
                         for i, (c, f) in enumerate(zip(tree["right"], tree["feature"])))
            value.extend(tree["value"])
            offset += n
        self.feature = np.asarray(feats, dtype=np.int64)
        self.is_leaf = self.feature < 0
        self.safe_feature = np.where(self.is_leaf, 0, self.feature)
        self.threshold = np.asarray(thr, dtype=np.float64)
        self.left = np.asarray(left, dtype=np.int64)
        self.right = np.asarray(right, dtype=np.int64)
        self.value = np.asarray(value, dtype=np.float64)
        self.roots = np.asarray(roots, dtype=np.int64)
        self.baseline = float(spec["baseline"])
        self.depth = int(spec.get("max_depth", 64))

    def logit(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if len(X) == 0 or len(self.roots) == 0:
            return np.full(len(X), self.baseline)
        rows = np.arange(len(X))[None, :]
        node = np.broadcast_to(self.roots[:, None], (len(self.roots), len(X))).copy()
        for _ in range(self.depth):
            leaf = self.is_leaf[node]
            if leaf.all():
                break
            x = X[rows, self.safe_feature[node]]
            node = np.where(x <= self.threshold[node], self.left[node], self.right[node])
        return self.baseline + self.value[node].sum(axis=0)


__all__ = ["Forest"]
