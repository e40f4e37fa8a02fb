"""The learned answer selector at answer time: the JSON model of ``rag.training.train``, NumPy only.

``Selector.rank`` scores the candidate sentences (``rag.generation.features``) with the selector
(gradient-boosted trees, ``rag.generation.trees``); ``Selector.confidence`` turns the best one into
p(it answers the question) with the answerability model (trees too), compared with the stored ``threshold`` to abstain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from rag.embedding.batching import Memo
from rag.errors import ConfigError
from rag.generation.features import FEATURES, Candidate
from rag.generation.trees import Forest

MODEL_PATH = Path(__file__).with_name("answerer.json")
MEMO_RANKINGS = 1024  # candidate sets whose logits are remembered (a few KB each)


def answerability_row(logits: np.ndarray, x: Sequence[float], names: Sequence[str]) -> np.ndarray:
    """The answerability model's input for a question: the best candidate's logit, its margin over the
    runner-up, the best candidate's features ``names`` (``x`` is its feature vector), and the bias.
    Training (``rag.training.train``) and answering build it here alike."""
    order = np.argsort(-logits, kind="stable")
    best = int(order[0])
    margin = float(logits[best] - logits[order[1]]) if len(order) > 1 else 5.0
    return np.array([float(logits[best]), margin, *(float(x[FEATURES.index(n)]) for n in names), 1.0])


class Selector:
    def __init__(self, model: dict[str, Any]) -> None:
        if list(model.get("features", [])) != list(FEATURES):
            raise ConfigError("the answer selector model was trained on other features than rag.generation.features "
                              "computes: retrain it with rag train-answerer")
        self.model = model
        self.selector = Forest(model["selector"])
        self.answerability = Forest(model["answerability"])
        self.stage2 = list(model["answerability"]["features"])
        self.threshold = float(model["threshold"])
        self._memo = Memo(MEMO_RANKINGS)

    @classmethod
    def load(cls, path: str | Path) -> Selector:
        """A model JSON of ``rag train-answerer``; ConfigError naming the file when it is not one."""
        path = Path(path)
        try:
            model = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read the answer selector model {path} (RAG_ANSWERER): "
                              f"{exc.strerror or exc}") from None
        except ValueError as exc:
            raise ConfigError(f"{path} is not an answer selector model (RAG_ANSWERER): invalid JSON ({exc})") from None
        if not isinstance(model, dict):
            raise ConfigError(f"{path} is not an answer selector model (RAG_ANSWERER): expected a JSON object")
        try:
            return cls(model)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ConfigError(f"{path} is not an answer selector model (RAG_ANSWERER): "
                              f"{type(exc).__name__} {exc}") from None

    def rank(self, cands: list[Candidate]) -> np.ndarray:
        """Each candidate's selector logit (set as its ``score`` too)."""
        if not cands:
            return np.zeros(0)
        X = np.array([c.x for c in cands], dtype=np.float64)
        # The logits are a function of X alone, and a question asked again over the same passages gives the
        # same X: remembered by a digest of its bytes (the forest was a quarter of a busy server's time)
        key = (X.shape, hashlib.blake2b(X.tobytes(), digest_size=16).digest())
        (logits,) = self._memo.get(key, lambda: (self.selector.logit(X),))
        for c, s in zip(cands, logits):
            c.score = float(s)
        return logits

    def confidence(self, cands: list[Candidate], logits: np.ndarray) -> float:
        """p(the best candidate answers the question)."""
        if not cands:
            return 0.0
        z = answerability_row(logits, cands[int(np.argmax(logits))].x, self.stage2[2:-1])
        return float(1.0 / (1.0 + np.exp(-self.answerability.logit(z[None, :])[0])))


@lru_cache(maxsize=1)
def default_selector() -> Selector:
    """The shipped model (``rag/generation/answerer.json``), loaded once."""
    return Selector.load(MODEL_PATH)


__all__ = ["MODEL_PATH", "Selector", "answerability_row", "default_selector"]
