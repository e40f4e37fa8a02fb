"""The JSON forest scores exactly as the scikit-learn model it was exported from."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rag.generation.selector import MODEL_PATH
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


def _walk(spec, x):
    """One row through each tree, node by node, the trees' values summed in order: the format's definition."""
    total = 0.0
    for tree in spec["trees"]:
        n = 0
        while tree["feature"][n] >= 0:
            n = tree["left"][n] if x[tree["feature"][n]] <= tree["threshold"][n] else tree["right"][n]
        total += tree["value"][n]
    return spec["baseline"] + total


def test_the_forest_walks_as_the_format_says_to_the_bit():
    """The shipped selector's and answerability model's forests, on rows with NaN (never <= a threshold:
    right), huge and tiny values, against a node-by-node walk of the JSON."""
    model = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    rng = np.random.default_rng(0)
    for name in ("selector", "answerability"):
        spec = model[name]
        width = max(max(t["feature"]) for t in spec["trees"]) + 1
        X = rng.standard_normal((40, width)) * rng.choice([1e-3, 1.0, 1e3], (40, width))
        X[rng.random(X.shape) < 0.1] = np.nan
        X[0] = [spec["trees"][0]["threshold"][0]] * width  # exactly on a threshold: left
        got = Forest(spec).logit(X)
        assert got.tobytes() == np.array([_walk(spec, x) for x in X]).tobytes()
        assert Forest(spec).logit(X[:1]).tobytes() == got[:1].tobytes()  # a row scores the same alone


def test_a_forest_whose_tree_leads_back_up_is_refused_not_walked_forever(tmp_path):
    """Node 1's left child is the root: no depth would reach a leaf. The file is refused as a model."""
    from rag.errors import ConfigError
    from rag.generation.selector import Selector

    cyclic = {"kind": "trees", "baseline": 0.0, "trees": [{"feature": [0, 0, -1], "threshold": [0.5, 0.5, 0.0],
                                                           "left": [1, 0, 2], "right": [2, 2, 2], "value": [0, 0, 1.0]}]}
    with pytest.raises(ValueError, match="cycle"):
        Forest(cyclic)
    model = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    model["selector"] = {**model["selector"], "trees": cyclic["trees"]}
    path = tmp_path / "answerer.json"
    path.write_text(json.dumps(model), encoding="utf-8")
    with pytest.raises(ConfigError, match="cycle"):
        Selector.load(path)
