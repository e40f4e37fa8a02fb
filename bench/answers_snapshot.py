"""Answers, scores and citations as bytes, to show a change leaves behaviour as it was.

Run it on two checkouts and compare the files with ``cmp`` (set ``PYTHONHASHSEED=0``):

    PYTHONHASHSEED=0 PYTHONPATH=/path/to/checkout python bench/answers_snapshot.py OUT \\
        --shared ../shared/data --trial-index IDX

It builds a fresh index over ``seeds/`` and asks seed-dev's questions there, then asks the first
``--limit`` CMRC 2018 trial questions over ``--trial-index`` (an index of the trial file's paragraphs,
e.g. the one ``rag eval cmrc2018-trial.json --index-dir IDX`` builds; copied first, so both runs read
the same files). Each line holds an answer's JSON without its timings and the top-5 chunk ids with
their scores; ``seed-manifest.json`` is the seed index's manifest without its times and versions.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from rag import RAG
from rag.evaluation.dataset import load_dataset

ROOT = Path(__file__).resolve().parents[1]


def dump(rag: RAG, questions: list[str], path: Path) -> None:
    with path.open("w", encoding="utf-8") as f:
        for q in questions:
            answer = rag.ask(q).to_dict()
            answer.pop("timings", None)
            hits = [(p.chunk.chunk_id, round(p.score, 6)) for p in rag.search(q, top_k=5)]
            f.write(json.dumps({"a": answer, "hits": hits}, ensure_ascii=False, sort_keys=True) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--trial-index", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=200)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp())
    seed = RAG.open(tmp / "seeds", create=True, progress=False)
    seed.index([ROOT / "seeds"])
    manifest = json.loads((tmp / "seeds" / "manifest.json").read_text(encoding="utf-8"))
    for key in ("created_at", "updated_at", "versions"):
        manifest.pop(key, None)
    (args.out / "seed-manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, sort_keys=True, indent=1),
                                                 encoding="utf-8")
    lines = (args.shared / "seed-dev.jsonl").read_text(encoding="utf-8").splitlines()
    dump(seed, [json.loads(line)["question"] for line in lines if line.strip()], args.out / "seed-dev.jsonl")
    trial = tmp / "trial"
    shutil.copytree(args.trial_index, trial)
    rows = load_dataset(str(args.shared / "cmrc2018-trial.json")).rows[: args.limit]
    dump(RAG.open(trial, progress=False), [row.question for row in rows], args.out / "cmrc-trial.jsonl")
    print(f"wrote {args.out}: seed-dev, {len(rows)} CMRC trial questions, the seed manifest")


if __name__ == "__main__":
    main()
