"""Check the English question set against its corpus (stdlib only, Python 3.11).

    python bench/english/check_questions.py [--corpus DIR] [--questions FILE]

Verifies that
  * every corpus document is UTF-8 text with a one-line title, 400-2,500 words;
  * every question line is a JSON object with exactly the fields
    id, question, answer, key_facts, topic, and every id is unique;
  * an answerable row names a corpus document as its topic (the file stem), has a
    reference answer and at least one key fact, and every accepted spelling of every
    key fact occurs in that document (lower case, whitespace collapsed); no spelling
    is already given away by the question itself;
  * an unanswerable row has "answer": null, "key_facts": [] and topic "unanswerable";
  * there are at least MIN_ANSWERABLE answerable and MIN_UNANSWERABLE unanswerable
    rows, and every document has at least MIN_PER_DOC questions.

Prints the counts per topic and, for information, how many of a question's content
words also occur in the sentence that holds its answer (high overlap means the
question copies the text's wording). Exit code 1 on any problem, else 0.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIELDS = {"id", "question", "answer", "key_facts", "topic"}
UNANSWERABLE = "unanswerable"
MIN_WORDS, MAX_WORDS = 400, 2500
MIN_ANSWERABLE, MIN_UNANSWERABLE, MIN_PER_DOC = 110, 12, 10
HIGH_OVERLAP = 0.75  # reported, not an error

STOPWORDS = set("""
a an the of in on at to for from by with and or but as is are was were be been being
did do does done has have had what which who whom whose when where why how many much
that this these those it its into about than then there their they he she his her him
one can could would should may might will shall not no yes any some all each per over
under after before during while since until more most less least very so such also
""".split())


def norm(text: str) -> str:
    """Lower case, whitespace runs collapsed to one space."""
    return re.sub(r"\s+", " ", text).strip().lower()


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+(?:['-][a-z0-9]+)*", text.lower())


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z\"])", re.sub(r"\s+", " ", text)) if s]


def load_corpus(corpus: Path, problems: list[str]) -> dict[str, str]:
    docs: dict[str, str] = {}
    files = sorted(corpus.glob("*.txt"))
    if not files:
        problems.append(f"{corpus}: no .txt documents")
    for f in files:
        try:
            text = f.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            problems.append(f"{f.name}: not UTF-8 ({exc})")
            continue
        title = text.split("\n", 1)[0].strip()
        if not title or len(title.split()) > 15:
            problems.append(f"{f.name}: the first line should be a short title, got {title[:60]!r}")
        n = len(text.split())
        if not MIN_WORDS <= n <= MAX_WORDS:
            problems.append(f"{f.name}: {n} words, expected {MIN_WORDS}-{MAX_WORDS}")
        docs[f.stem] = text
    return docs


def check_row(obj: object, where: str, docs: dict[str, str], normed: dict[str, str],
              problems: list[str]) -> tuple[str, float | None] | None:
    """Problems with one row; returns (topic, overlap) when the row is well formed."""
    if not isinstance(obj, dict):
        problems.append(f"{where}: not a JSON object")
        return None
    keys = set(obj)
    if keys != FIELDS:
        extra, missing = sorted(keys - FIELDS), sorted(FIELDS - keys)
        problems.append(f"{where}: fields differ (extra {extra}, missing {missing})")
        return None
    rid, question, answer, facts, topic = (obj[k] for k in ("id", "question", "answer", "key_facts", "topic"))
    ok = True
    if not isinstance(rid, str) or not re.fullmatch(r"en-\d{3}", rid):
        problems.append(f"{where}: id {rid!r} is not of the form en-NNN")
        ok = False
    if not isinstance(question, str) or not question.strip():
        problems.append(f"{where}: empty question")
        return None
    if not isinstance(facts, list):
        problems.append(f"{where}: key_facts must be a list")
        return None
    if answer is None:
        if facts:
            problems.append(f"{where}: answer is null but key_facts is not empty")
            ok = False
        if topic != UNANSWERABLE:
            problems.append(f"{where}: an unanswerable row must have topic {UNANSWERABLE!r}, got {topic!r}")
            ok = False
        return (UNANSWERABLE, None) if ok else None
    if not isinstance(answer, str) or not answer.strip():
        problems.append(f"{where}: answer must be a non-empty string or null")
        ok = False
    if topic not in docs:
        problems.append(f"{where}: topic {topic!r} names no corpus document")
        return None
    if not facts:
        problems.append(f"{where}: an answerable row needs at least one key fact")
        return None
    qn = norm(question)
    first_spellings = []
    for i, fact in enumerate(facts):
        if not isinstance(fact, list) or not fact or not all(isinstance(s, str) and s.strip() for s in fact):
            problems.append(f"{where}: key_facts[{i}] must be a non-empty list of non-empty strings")
            ok = False
            continue
        first_spellings.append(fact[0])
        for s in fact:
            if norm(s) not in normed[topic]:
                problems.append(f"{where}: key fact {s!r} does not occur in {topic}.txt")
                ok = False
            if norm(s) in qn:
                problems.append(f"{where}: key fact {s!r} is already in the question")
                ok = False
    if not ok:
        return None
    # Word overlap between the question and the sentence that holds the first fact.
    content = {w for w in words(question) if w not in STOPWORDS}
    best = None
    for sent in sentences(docs[topic]):
        if all(norm(s) in norm(sent) for s in first_spellings):
            sw = set(words(sent))
            share = len(content & sw) / len(content) if content else 0.0
            best = share if best is None else min(best, share)
    return topic, best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=HERE / "corpus")
    ap.add_argument("--questions", type=Path, default=HERE / "questions.jsonl")
    args = ap.parse_args(argv)

    problems: list[str] = []
    docs = load_corpus(args.corpus, problems)
    normed = {k: norm(v) for k, v in docs.items()}

    seen: Counter[str] = Counter()
    per_topic: Counter[str] = Counter()
    overlaps: list[tuple[float, str]] = []
    n_lines = 0
    try:
        lines = args.questions.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        print(f"cannot read {args.questions}: {exc}")
        return 1
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        n_lines += 1
        where = f"{args.questions.name} line {lineno}"
        try:
            obj = json.loads(line)
        except ValueError as exc:
            problems.append(f"{where}: not valid JSON ({exc})")
            continue
        if isinstance(obj, dict) and isinstance(obj.get("id"), str):
            seen[obj["id"]] += 1
            where += f" ({obj['id']})"
        got = check_row(obj, where, docs, normed, problems)
        if got is None:
            continue
        topic, overlap = got
        per_topic[topic] += 1
        if overlap is not None:
            overlaps.append((overlap, obj["id"]))

    for rid, n in sorted(seen.items()):
        if n > 1:
            problems.append(f"id {rid!r} is used {n} times")
    answerable = sum(n for t, n in per_topic.items() if t != UNANSWERABLE)
    unanswerable = per_topic[UNANSWERABLE]
    if answerable < MIN_ANSWERABLE:
        problems.append(f"{answerable} answerable questions, expected at least {MIN_ANSWERABLE}")
    if unanswerable < MIN_UNANSWERABLE:
        problems.append(f"{unanswerable} unanswerable questions, expected at least {MIN_UNANSWERABLE}")
    for stem in sorted(docs):
        if per_topic[stem] < MIN_PER_DOC:
            problems.append(f"{stem}.txt has {per_topic[stem]} questions, expected at least {MIN_PER_DOC}")

    print(f"corpus: {len(docs)} documents in {args.corpus}")
    for stem in sorted(docs):
        print(f"  {stem:<16} {len(docs[stem].split()):>5} words  {per_topic[stem]:>3} questions")
    print(f"questions: {n_lines} rows in {args.questions}: {answerable} answerable, {unanswerable} unanswerable")
    if overlaps:
        vals = sorted(v for v, _ in overlaps)
        mean = sum(vals) / len(vals)
        high = sorted((rid for v, rid in overlaps if v >= HIGH_OVERLAP))
        print(f"question/answer-sentence content-word overlap: mean {mean:.2f}, median {vals[len(vals) // 2]:.2f}, "
              f"max {vals[-1]:.2f}; {len(high)} at or above {HIGH_OVERLAP:.2f}" + (f": {', '.join(high)}" if high else ""))
    if problems:
        print(f"\n{len(problems)} problem(s):")
        for p in problems:
            print(f"  {p}")
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
