"""Write the distractor news articles (shared/data/news-distractors-*.jsonl) as text files beside the seeds.

    python bench/corpus.py OUT_DIR [--distractors FILE] [--limit N]

The folder then holds ``seeds/`` copied in and ``news/<id>.txt``: index it to test
whether the right seed passage still ranks first among many similar news passages.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DISTRACTORS = ROOT.parent / "shared" / "data" / "news-distractors-dev.jsonl"


def build(out: Path, distractors: Path = DEFAULT_DISTRACTORS, limit: int | None = None) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for f in (ROOT / "seeds").iterdir():
        if f.is_file():
            shutil.copy2(f, out / f.name)
    news = out / "news"
    news.mkdir(exist_ok=True)
    with distractors.open(encoding="utf-8") as f:
        for i, line in enumerate(f):
            if limit is not None and i >= limit:
                break
            row = json.loads(line)
            (news / f"{row['id']}.txt").write_text(row["text"], encoding="utf-8")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--distractors", type=Path, default=DEFAULT_DISTRACTORS)
    ap.add_argument("--limit", type=int)
    args = ap.parse_args()
    print(build(args.out, args.distractors, args.limit))


if __name__ == "__main__":
    main()
