"""A quick-loading stand-in for a Metaspace + Unigram ``tokenizer.json`` (e5's 250k pieces): the same ids.

HF ``tokenizers`` takes 0.55 s to load e5's ``tokenizer.json``, most of it building the
Unigram model's trie over 250k pieces, and holds the GIL all along, so nothing else of a
cold start runs meanwhile. Here the pieces are a marshalled dict (piece -> id, 0.07 s to load,
in a background thread) and their float64 scores an array; a question then needs ~1 ms more.

The search is HF's own: a lookup answers which substrings of the words are pieces, and HF's
Unigram model is then built over just those pieces (with their float64 scores, and the
lowest-scored piece, which sets the unknown score) and does the search: a piece that is no
substring of a word never matches, so the search, and the ids, are the same as over all 250k.
(SentencePiece, which held the pieces before format 2, loads in 0.4 s, and its own Viterbi sums
scores in float32 and breaks ties such as ``ＡＡＡ`` differently from HF's float64 one.)
Normalising and pre-tokenising are HF's too, from a *skeleton* of the file (the same JSON with a
one-piece vocabulary), so quirks such as the charsmap applied per grapheme are kept;
``<s> … </s>`` and truncation are added as the template does. Texts where special tokens could
match (added tokens in the text, their text after normalising), and calls with many texts
(indexing, where the full HF tokenizer is faster once loaded), go to HF's tokenizer itself,
loaded then.

``build`` writes the files (``tokenizer.fast.*``) for a ``tokenizer.json`` of that shape and
refuses others (WordPiece models keep HF's tokenizer); ``find``/``load`` ignore files made
from another ``tokenizer.json`` (size and mtime) or by another Python (marshal's format).
tests/embedding/test_fast_tokenizer.py checks the ids equal HF's.
"""

from __future__ import annotations

import json
import marshal
import sys
import threading
from array import array
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rag.files import write_atomic

FORMAT_VERSION = 2  # 2: the pieces as a marshalled dict (1: a SentencePiece model)
PIECES_FILE = "tokenizer.fast.pieces"
_MARSHAL = f"{sys.version_info[0]}.{sys.version_info[1]}"  # marshal's format may change between Pythons
META_FILE = "tokenizer.fast.json"
BULK = 8  # more texts than this in one call (indexing, not a question): HF's tokenizer takes over
SCORES_FILE = "tokenizer.fast.scores"  # the pieces' scores as float64, little-endian: HF scores in f64


class Unsupported(ValueError):
    """This tokenizer.json is not a Metaspace + Unigram + <s> $A </s> tokenizer."""


def _source_stamp(tokenizer_json: Path) -> dict[str, int]:
    st = tokenizer_json.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _check_shape(spec: dict[str, Any]) -> tuple[int, int]:
    """(bos, eos) ids of the single-sequence template; Unsupported for anything else."""
    model, pre, post = spec.get("model") or {}, spec.get("pre_tokenizer") or {}, spec.get("post_processor") or {}
    if model.get("type") != "Unigram" or model.get("byte_fallback"):
        raise Unsupported("the model is not a Unigram without byte fallback")
    if pre.get("type") != "Metaspace" or pre.get("split") is False or pre.get("replacement") != "▁":
        raise Unsupported("the pre-tokenizer is not Metaspace splitting on ▁")
    if spec.get("truncation") or spec.get("padding"):
        raise Unsupported("truncation or padding is set in the file")
    single = post.get("single") or []
    shape = [next(iter(s)) for s in single]
    if post.get("type") != "TemplateProcessing" or shape != ["SpecialToken", "Sequence", "SpecialToken"]:
        raise Unsupported("the post-processor is not the template <s> $A </s>")
    specials = post.get("special_tokens") or {}
    ids = [specials[s["SpecialToken"]["id"]]["ids"] for s in (single[0], single[2])]
    if any(len(i) != 1 for i in ids):
        raise Unsupported("a template token is not one id")
    return ids[0][0], ids[1][0]


def build(tokenizer_json: Path, out_dir: Path) -> Path:
    """Write ``tokenizer.fast.model`` and ``.json`` for ``tokenizer_json`` into ``out_dir``; returns the meta file."""
    stamp = _source_stamp(tokenizer_json)
    spec = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    bos, eos = _check_shape(spec)
    model = spec["model"]
    vocab, unk_id = model["vocab"], model.get("unk_id")
    pieces = [p for p, _ in vocab]
    if unk_id is None or not 0 <= unk_id < len(vocab) or len(set(pieces)) != len(pieces) or "" in pieces:
        raise Unsupported("no unknown piece, or empty or repeated pieces")
    added = [t["content"] for t in spec.get("added_tokens") or []]
    special_pieces = {t["content"] for t in spec.get("added_tokens") or [] if t.get("special")}
    skeleton = {**spec, "added_tokens": [], "post_processor": None, "truncation": None, "padding": None,
                "model": {"type": "Unigram", "unk_id": 0, "vocab": [["<unk>", 0.0]], "byte_fallback": False}}
    min_id = min(range(len(vocab)), key=lambda i: float(vocab[i][1]))  # HF's unknown score: lowest - 10
    scores = array("d", (float(sc) for _, sc in vocab))
    if sys.byteorder != "little":
        scores.byteswap()
    meta = {
        "format": FORMAT_VERSION, "source": stamp, "python": _MARSHAL, "bos": bos, "eos": eos, "unk": unk_id,
        "added_tokens": added, "controls": sorted(special_pieces),
        "longest_piece": max(len(p) for p in pieces),
        "min_score_id": min_id, "min_score_piece": pieces[min_id],
        "token_ids": {t: i for i, t in enumerate(pieces) if t in special_pieces or i == unk_id},
        "skeleton": skeleton,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(out_dir / SCORES_FILE, scores.tobytes())
    write_atomic(out_dir / PIECES_FILE, marshal.dumps({p: i for i, p in enumerate(pieces)}))
    write_atomic(out_dir / META_FILE, json.dumps(meta, ensure_ascii=False).encode("utf-8"))
    return out_dir / META_FILE


def find(tokenizer_json: Path, *dirs: Path) -> Path | None:
    """The first of ``dirs`` holding fast files made from this very ``tokenizer_json``."""
    try:
        stamp = _source_stamp(tokenizer_json)
    except OSError:
        return None
    for d in dirs:
        try:
            meta = json.loads((d / META_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if (meta.get("format") == FORMAT_VERSION and meta.get("source") == stamp and meta.get("python") == _MARSHAL
                and (d / PIECES_FILE).is_file() and (d / SCORES_FILE).is_file()):
            return d
    return None


class FastTokenizer:
    """``encode_ids(texts)``: the ids HF's tokenizer gives (with ``<s> … </s>``, truncated to ``max_length``).

    The pieces load in a background thread (``start``); ``encode_ids`` waits for them, and uses HF's
    tokenizer should they fail to load.
    """

    def __init__(self, folder: Path, tokenizer_json: Path, max_length: int) -> None:
        from tokenizers import Tokenizer  # noqa: PLC0415 - HF tokenizers (~50 ms) when a tokenizer is made, not at import

        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        self._folder, self._source, self.max_length = folder, tokenizer_json, max_length
        self._bos, self._eos, self._unk = int(meta["bos"]), int(meta["eos"]), int(meta["unk"])
        self._min_id, self._longest = int(meta["min_score_id"]), int(meta["longest_piece"])
        self._added = [t for t in meta["added_tokens"] if t]
        self._controls = [t for t in meta["controls"] if t]
        self._ids: dict[str, int] = meta["token_ids"]
        self._unk_piece = next(t for t, i in self._ids.items() if i == self._unk)
        self._min_piece = meta["min_score_piece"]
        skeleton = Tokenizer.from_str(json.dumps(meta["skeleton"]))
        self._normalizer, self._pre = skeleton.normalizer, skeleton.pre_tokenizer
        self._pieces: dict[str, int] | None = None
        self._scores: Any = None
        self._error: BaseException | None = None
        self._hf: Any = None
        self.bulk = False  # set by the first call with more than BULK texts: HF's tokenizer from then on
        self._hf_lock = threading.Lock()
        # Not a daemon: a process that ended while the loader (SentencePiece's C++, before format 2) was still
        # running aborted ("terminate called without an active exception", CI's `rag model`); exit waits for it
        self._loader = threading.Thread(target=self._load, name="fast-tokenizer-load", daemon=False)

    def start(self) -> FastTokenizer:
        self._loader.start()
        return self

    def _load(self) -> None:
        try:
            scores = array("d")
            scores.frombytes((self._folder / SCORES_FILE).read_bytes())
            if sys.byteorder != "little":
                scores.byteswap()
            pieces = marshal.loads((self._folder / PIECES_FILE).read_bytes())
            if not isinstance(pieces, dict) or len(pieces) != len(scores):
                raise ValueError(f"{PIECES_FILE} does not hold one id per scored piece")
            self._scores, self._pieces = scores, pieces
        except Exception as exc:  # then HF's tokenizer does the work
            self._error = exc

    def wait(self) -> bool:
        """Whether the pieces loaded (else HF's tokenizer does the work)."""
        if self._pieces is None:
            if self._loader.ident is None:
                self._loader.start()
            self._loader.join()
        return self._pieces is not None

    def token_to_id(self, token: str) -> int | None:
        return self._ids.get(token)

    def encode_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """One list of ids per text, as HF's ``encode_batch(texts)`` gives them."""
        if len(texts) > BULK or not (self.bulk or self.wait()):
            self.bulk = True
        if self.bulk:  # indexing: HF's tokenizer, loaded once, is faster on many texts
            return [e.ids for e in self._hf_tokenizer().encode_batch(list(texts))]
        out: list[list[int] | None] = [None] * len(texts)
        mine: list[int] = []
        for i, text in enumerate(texts):
            if any(t in text for t in self._added):
                out[i] = self._hf_tokenizer().encode(text).ids  # HF splits added tokens off first
            else:
                mine.append(i)
        if mine:
            for i, ids in zip(mine, self._encode([texts[i] for i in mine]), strict=True):
                out[i] = ids if ids is not None else self._hf_tokenizer().encode(texts[i]).ids
        return out  # type: ignore[return-value]

    def encode_offsets(self, texts: Sequence[str]) -> list[tuple[list[int], list[tuple[int, int]]] | None]:
        """Per text, its ids and each id's character span in the text, without ``<s> … </s>`` and without
        truncation, as HF's ``encode_batch(texts, add_special_tokens=False)`` gives them; None for a text
        only HF's own tokenizer may encode (special tokens' text in it), and for all when the model failed
        to load. For a reader, which needs offsets and must not load HF's tokenizer (0.55 s on the GIL)."""
        if not self.wait():
            return [None] * len(texts)
        plain = [i for i, t in enumerate(texts) if not any(a in t for a in self._added)]
        out: list[tuple[list[int], list[tuple[int, int]]] | None] = [None] * len(texts)
        to_global, encs = self._local([texts[i] for i in plain])
        for i, enc in zip(plain, encs, strict=True):
            if enc is not None:
                out[i] = ([to_global[k] for k in enc.ids], list(enc.offsets))
        return out

    def _encode(self, texts: list[str]) -> list[list[int] | None]:
        """HF's own Unigram over the pieces that occur in ``texts``: the same search, so the same ids,
        with ``<s> … </s>`` and truncation as the template does."""
        to_global, encs = self._local(texts)
        keep = max(self.max_length - 2, 0)
        return [None if enc is None else [self._bos, *(to_global[i] for i in enc.ids[:keep]), self._eos]
                for enc in encs]

    def _local(self, texts: list[str]) -> tuple[list[int], list[Any]]:
        """(local id -> global id, HF encodings without special tokens in local ids, one per text).

        A piece that is no substring of a word never matches, and the score of an unknown piece
        (the lowest score, less 10) is kept by the lowest-scored piece. None for a text whose
        normal form holds a special token's text (HF's Unigram could match it): HF decides.
        """
        from tokenizers import Tokenizer  # noqa: PLC0415 - tokenizers stays out of import time (the constructor loaded it)
        from tokenizers.models import Unigram  # noqa: PLC0415 - as above, tokenizers out of import time

        normalized = [self._normalizer.normalize_str(t) for t in texts]
        usable = [not any(c in n for c in self._controls) for n in normalized]
        subs: set[str] = set()
        longest = self._longest
        for n, ok in zip(normalized, usable, strict=True):
            if ok:
                for word, _ in self._pre.pre_tokenize_str(n):
                    size = len(word)
                    for a in range(size):
                        subs.update(word[a:b] for b in range(a + 1, min(a + longest, size) + 1))
        known = self._pieces
        pieces = {s: i for s in subs if (i := known.get(s, self._unk)) != self._unk}
        pieces[self._unk_piece], pieces[self._min_piece] = self._unk, self._min_id
        local = sorted(pieces.items(), key=lambda kv: kv[1])
        scores = self._scores
        vocab = [(piece, scores[i]) for piece, i in local]
        to_global = [i for _, i in local]
        tok = Tokenizer(Unigram(vocab, unk_id=to_global.index(self._unk), byte_fallback=False))
        tok.normalizer, tok.pre_tokenizer = self._normalizer, self._pre
        todo = [t for t, ok in zip(texts, usable, strict=True) if ok]
        encs = iter(tok.encode_batch(todo, add_special_tokens=False) if todo else [])
        return to_global, [next(encs) if ok else None for ok in usable]

    def _hf_tokenizer(self) -> Any:
        """HF's tokenizer from tokenizer.json itself (0.55 s to load, once)."""
        with self._hf_lock:
            if self._hf is None:
                from tokenizers import Tokenizer  # noqa: PLC0415 - HF tokenizers, for the fallback tokenizer only

                tok = Tokenizer.from_file(str(self._source))
                tok.enable_truncation(self.max_length)
                tok.no_padding()
                self._hf = tok
        return self._hf


def load(tokenizer_json: Path, max_length: int, *dirs: Path, build_in: Path | None = None) -> FastTokenizer | None:
    """A started FastTokenizer from the first of ``dirs`` with current files, else built into ``build_in``
    (once; about 2 s); None when this tokenizer.json is not of the supported shape or nothing can be written."""
    folder = find(tokenizer_json, *dirs)
    if folder is None and build_in is not None:
        try:
            build(tokenizer_json, build_in)
            folder = find(tokenizer_json, build_in)
        except (Unsupported, OSError, ValueError, KeyError, TypeError, IndexError):
            folder = None
    if folder is None or max_length < 2:
        return None
    return FastTokenizer(folder, tokenizer_json, max_length).start()


_SHARED: dict[tuple[str, ...], FastTokenizer | None] = {}
_SHARING = threading.Lock()


def shared(tokenizer_json: Path, max_length: int, *dirs: Path, build_in: Path | None = None) -> FastTokenizer | None:
    """``load``'s tokenizer, one per set of arguments in a process: the embedder and the reader of e5 share
    one (one table of pieces in memory, loaded once); loaded again when its files changed."""
    key = (*(str(Path(p).resolve()) for p in (tokenizer_json, *dirs)), str(build_in and Path(build_in).resolve()),
           str(max_length))
    with _SHARING:
        known = _SHARED.get(key)
        if known is not None and find(tokenizer_json, known._folder) is not None:
            return known
        _SHARED[key] = load(tokenizer_json, max_length, *dirs, build_in=build_in)
        return _SHARED[key]


__all__ = ["FastTokenizer", "Unsupported", "build", "find", "load", "shared"]
