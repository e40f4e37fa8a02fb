"""The JSON forest scores exactly as the scikit-learn model it was exported from."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rag.generation.trees import Forest
from rag.training.train import export_trees

sklearn = pytest.importorskip("sklearn.ensemble")


@pytest.mark.slow
def test_the_exported_forest_gives_scikit_learns_logits():
    rng = np.random.RandomState(0)
    X = rng.rand(600, 5)
    X[:, 3] = (X[:, 3] > 0.5).astype(float)  # a binary feature, as many of ours are
    y = ((X[:, 0] + 0.5 * X[:, 1] * X[:, 3] + 0.1 * rng.rand(600)) > 0.7).astype(int)
    clf = sklearn.HistGradientBoostingClassifier(max_iter=40, max_leaf_nodes=15, early_stopping=False,
                                                 random_state=0).fit(X, y)
    spec = json.loads(json.dumps(export_trees(clf)))  # through JSON, as shipped
    test = rng.rand(200, 5)
    test[:, 3] = (test[:, 3] > 0.5).astype(float)
    assert np.allclose(Forest(spec).logit(test), clf.decision_function(test), atol=1e-6)
    assert Forest(spec).logit(np.zeros((0, 5))).shape == (0,)


def test_a_forest_of_one_leaf_is_its_baseline_plus_the_leaf():
    spec = {"kind": "trees", "baseline": 0.25, "trees": [{"feature": [-1], "threshold": [0.0], "left": [0],
                                                          "right": [0], "value": [0.5]}]}
    assert Forest(spec).logit(np.ones((3, 2))).tolist() == [0.75, 0.75, 0.75]
