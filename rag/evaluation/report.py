"""Presenting finished ``rag eval`` runs: the self-contained report.html, and comparing two runs.

The report is one HTML file with inline CSS and inline SVG charts drawn here: no script, no
external stylesheet or font, so it opens offline and can be mailed around. The page is rendered from
the Jinja2 templates in ``rag.evaluation.templates`` with autoescape on; the SVG charts are built
here, every piece of text in them through ``html.escape``.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from rag.errors import ConfigError
from rag.evaluation.templates import TEMPLATES

# (label, path in the summary, path of its "over n", what it means)
METRICS: list[tuple[str, tuple[str, ...], tuple[str, ...] | None, str]] = [
    ("hit@1", ("retrieval", "hit@1"), ("retrieval", "n"), "first passage is relevant"),
    ("hit@k", ("retrieval", "hit@k"), ("retrieval", "n"), "a relevant passage among the k retrieved"),
    ("MRR", ("retrieval", "mrr"), ("retrieval", "n"), "mean 1/rank of the first relevant passage"),
    ("recall@k", ("retrieval", "recall@k"), ("retrieval", "n"), "share of gold docs / key facts the k passages hold"),
    ("accuracy", ("answer", "accuracy"), ("answer", "n"), "answered and states every key fact"),
    ("char F1", ("answer", "char_f1"), None, "character F1 against the reference (rows without key facts)"),
    ("containment", ("answer", "containment"), None, "answer contains the reference (rows without key facts)"),
    ("citation validity", ("citation", "validity"), ("citation", "n"), "[n] points at a passage that was given"),
    ("citation precision", ("citation", "precision"), ("citation", "n"),
     "valid, and the cited passage states a fact the answer states"),
    ("abstained, unanswerable", ("abstention", "unanswerable_abstained"), ("abstention", "n_unanswerable"),
     "share of unanswerable questions abstained on: higher is better"),
    ("abstained, answerable", ("abstention", "answerable_abstained"), ("abstention", "n_answerable"),
     "share of answerable questions abstained on: lower is better"),
    ("contains", ("span", "contains"), ("span", "n"),
     "SQuAD-format set: answered, and the answer holds a gold answer (normalised)"),
    ("span F1", ("span", "span_f1"), ("span", "n"), "CMRC 2018's character F1 against the gold answers (max over them)"),
    ("span F1 measured on", ("span", "f1_source"), None, "answer_span when the answer has one, else the answer text"),
    ("latency p50 (ms)", ("latency_ms", "p50"), ("n",), "median time of one ask"),
    ("latency p95 (ms)", ("latency_ms", "p95"), ("n",), "95th percentile time of one ask"),
    ("retrieval p95 (ms)", ("stages_ms", "retrieve", "p95"), ("n",), "the answer's retrieve_ms: query embedding and search"),
    ("answer stage p50 (ms)", ("stages_ms", "generate", "p50"), ("n",), "the answer's generate_ms, retrieval excluded"),
    ("answer stage p95 (ms)", ("stages_ms", "generate", "p95"), ("n",), "95th percentile of generate_ms"),
    ("passed", ("passed",), ("n",), "share of questions with no failure reason"),
]
# rates drawn per topic (all in 0..1)
TOPIC_BARS = [("hit@1", ("retrieval", "hit@1")), ("hit@k", ("retrieval", "hit@k")), ("MRR", ("retrieval", "mrr")),
              ("accuracy", ("answer", "accuracy")), ("contains", ("span", "contains")),
              ("cit. precision", ("citation", "precision")), ("passed", ("passed",))]
COLORS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#edc948", "#76b7b2", "#b07aa1"]


def _get(d: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(d, dict):
            return None
        d = d.get(key)  # type: ignore[assignment]
    return d


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".")
    return str(value)


def _e(value: Any) -> str:
    return escape(value if isinstance(value, str) else _fmt(value), quote=True)


# ---- charts ----------------------------------------------------------------------------------


def topic_chart(by_topic: dict[str, dict[str, Any]]) -> str:
    """Grouped bars: one group per topic, one bar per rate in ``TOPIC_BARS`` (a missing rate is marked n/a)."""
    if not by_topic:
        return "<p class=muted>no topics</p>"
    bar, gap, left, top, h, legend = 16, 28, 36, 28, 180, 110
    group = bar * len(TOPIC_BARS) + gap
    width = max(left + group * len(by_topic), left + legend * len(TOPIC_BARS)) + 10
    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{top + h + 44}" role="img" '
              f'aria-label="metrics by topic">')]
    for i, (label, _) in enumerate(TOPIC_BARS):  # legend
        x = left + i * legend
        parts.append(f'<rect x="{x}" y="4" width="10" height="10" fill="{COLORS[i]}"/>'
                     f'<text x="{x + 14}" y="13">{_e(label)}</text>')
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        y = top + h - tick * h
        parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{tick:g}</text>')
    for g, (topic, s) in enumerate(by_topic.items()):
        x0 = left + g * group + gap / 2
        for i, (label, path) in enumerate(TOPIC_BARS):
            value, x = _get(s, path), x0 + i * bar
            tip = f"{topic} · {label}: {_fmt(value)}"
            if value is None:  # no question of this topic counts for this rate: a grey stub, not a zero
                parts.append(f'<rect x="{x:.1f}" y="{top + h - 3}" width="{bar - 2}" height="3" fill="#bbb">'
                             f'<title>{_e(tip)}</title></rect>')
                continue
            bh = max(float(value), 0.0) * h
            parts.append(f'<rect x="{x:.1f}" y="{top + h - bh:.1f}" width="{bar - 2}" height="{bh:.1f}" '
                         f'fill="{COLORS[i]}"><title>{_e(tip)}</title></rect>')
        parts.append(f'<text x="{x0 + bar * len(TOPIC_BARS) / 2:.1f}" y="{top + h + 16}" text-anchor="middle">'
                     f'{_e(topic)}</text><text x="{x0 + bar * len(TOPIC_BARS) / 2:.1f}" y="{top + h + 30}" '
                     f'text-anchor="middle" fill="#888">n={_e(s.get("n"))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def latency_histogram(latencies: list[float], p50: float | None, p95: float | None) -> str:
    """Equal-width histogram of per-question latency, with the p50 and p95 marked."""
    if not latencies:
        return "<p class=muted>no latencies</p>"
    lo, hi = min(latencies), max(latencies)
    bins = min(30, max(10, 2 * math.ceil(math.sqrt(len(latencies)))))
    if hi - lo < 1e-9:  # all equal: one bar around the value
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(latencies, bins=bins, range=(lo, hi))
    left, top, w, h = 40, 34, 640, 160
    bw, peak = w / bins, max(int(counts.max()), 1)
    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + w + 20}" height="{top + h + 40}" '
              f'role="img" aria-label="latency histogram">'),
             f'<line x1="{left}" x2="{left + w}" y1="{top + h}" y2="{top + h}" stroke="#999"/>',
             f'<text x="{left - 4}" y="{top + 4}" text-anchor="end">{peak}</text>',
             f'<text x="{left - 4}" y="{top + h}" text-anchor="end">0</text>']
    for i, c in enumerate(counts):
        bh = c / peak * h
        x = left + i * bw
        parts.append(f'<rect x="{x + 1:.1f}" y="{top + h - bh:.1f}" width="{bw - 2:.1f}" height="{bh:.1f}" '
                     f'fill="{COLORS[0]}"><title>{edges[i]:.0f}–{edges[i + 1]:.0f} ms: {int(c)}</title></rect>')
    for i in range(0, bins + 1, max(1, bins // 5)):
        parts.append(f'<text x="{left + i * bw:.1f}" y="{top + h + 14}" text-anchor="middle">{edges[i]:.0f}</text>')
    parts.append(f'<text x="{left + w / 2}" y="{top + h + 32}" text-anchor="middle">milliseconds per question</text>')
    for name, value, color, y in (("p50", p50, "#333", top - 20), ("p95", p95, "#d9534f", top - 6)):
        if value is None:  # labels on two rows, so close percentiles do not overprint each other
            continue
        x = left + (float(value) - lo) / (hi - lo) * w
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{y + 2}" y2="{top + h}" stroke="{color}" '
                     f'stroke-dasharray="4 3"/><text x="{x + 3:.1f}" y="{y}" fill="{color}">{name} '
                     f'{float(value):.0f} ms</text>')
    parts.append("</svg>")
    return "".join(parts)


def confidence_chart(points: list[dict[str, Any]]) -> str:
    """The answered share (x) against the accuracy of the answers given (y), one dot per threshold."""
    if not points:
        return "<p class=muted>the answers carry no confidence</p>"
    left, top, w, h = 44, 16, 420, 220
    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + w + 20}" height="{top + h + 44}" '
              f'role="img" aria-label="answered share vs accuracy">')]
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        x, y = left + tick * w, top + h - tick * h
        parts.append(f'<line x1="{left}" x2="{left + w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
                     f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{tick:g}</text>'
                     f'<text x="{x:.1f}" y="{top + h + 14}" text-anchor="middle">{tick:g}</text>')
    xy = [(left + float(p["answered"]) * w, top + h - float(p["accuracy"]) * h) for p in points]
    parts.append('<polyline fill="none" stroke="#4e79a7" stroke-width="2" points="'
                 + " ".join(f"{x:.1f},{y:.1f}" for x, y in xy) + '"/>')
    for (x, y), p in zip(xy, points):
        tip = f"confidence ≥ {_fmt(p['threshold'])}: answered {_fmt(p['answered'])}, accuracy {_fmt(p['accuracy'])}"
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#4e79a7"><title>{_e(tip)}</title></circle>')
    parts.append(f'<text x="{left + w / 2}" y="{top + h + 32}" text-anchor="middle">answered share</text>'
                 f'<text x="12" y="{top + h / 2}" transform="rotate(-90 12 {top + h / 2})" text-anchor="middle">'
                 f'accuracy of the answers given</text></svg>')
    return "".join(parts)


# ---- the page --------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _env() -> Any:
    """The templates' Jinja2 environment, made at the first page (jinja2's import is ~11 ms of every
    command's start-up, which imports this module for the comparison's text)."""
    import jinja2  # noqa: PLC0415 - only a page needs it

    env = jinja2.Environment(loader=jinja2.DictLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["fmt"] = _fmt
    return env


def _excerpt(text: str, limit: int = 600) -> str:  # a default chunk fits whole
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def _failure(r: dict[str, Any]) -> dict[str, Any]:
    """What the failure template shows of one failed question."""
    cited = {c["n"] for c in r.get("citations") or []}
    judge = r.get("judge")
    return {
        "id": r["id"], "topic": r.get("topic"), "question": r["question"], "reasons": r.get("reasons") or [],
        "abstained": bool(r.get("abstained")), "answer": r.get("answer") or "—",
        "reference": r.get("reference") or ("— (unanswerable)" if not r.get("answerable") else "—"),
        "facts": [(" / ".join(f), ok) for f, ok in zip(r.get("key_facts") or [], r.get("facts_found") or [])],
        "judge": json.dumps(judge, ensure_ascii=False) if judge else "",
        "warnings": r.get("warnings") or [], "generator": r.get("generator") or "", "latency_ms": r.get("latency_ms"),
        "passages": [{"n": i, "doc_id": p["doc_id"], "chunk_id": p["chunk_id"], "score": p["score"],
                      "relevant": p["relevant"], "cited": i in cited, "excerpt": _excerpt(p.get("text", ""))}
                     for i, p in enumerate(r.get("retrieved") or [], 1)],
    }


def _judge_cell(judge: dict[str, Any] | None) -> str:
    if not judge:
        return ""
    if "error" in judge:
        return "error"
    return f"correct {judge['correct']} · faithful {judge['faithful']}"


def render_html(summary: dict[str, Any], results: list[dict[str, Any]], errors: list[str] | None = None) -> str:
    """The whole report.html for one run (templates in ``rag.evaluation.templates``)."""
    run = summary.get("run") or {}
    by_topic = summary.get("by_topic") or {}
    failed = [r for r in results if not r.get("passed")]
    lat = summary.get("latency_ms") or {}
    return _env().get_template("report.html").render(
        meta=" · ".join(f"{k}: {_fmt(v)}" for k, v in run.items() if v not in (None, "")),
        n=summary.get("n"), passed=len(results) - len(failed),
        failed=[_failure(r) for r in failed],
        skipped=errors if errors is not None else summary.get("skipped_rows") or [],
        metrics=[{"label": label, "value": _get(summary, path), "has_over": over is not None,
                  "over": _get(summary, over) if over else None, "meaning": text}
                 for label, path, over, text in METRICS],
        judge=summary.get("judge") or {},
        topic_chart=topic_chart(by_topic),
        topic_labels=[label for label, _ in TOPIC_BARS],
        topics=[{"topic": t, "n": s.get("n"), "values": [_get(s, path) for _, path in TOPIC_BARS]}
                for t, s in by_topic.items()],
        curve=summary.get("confidence_curve") or {"field": None, "points": []},
        curve_chart=confidence_chart((summary.get("confidence_curve") or {}).get("points") or []),
        latency_chart=latency_histogram([r["latency_ms"] for r in results], lat.get("p50"), lat.get("p95")),
        results=[{"id": r["id"], "topic": r.get("topic"), "question": r["question"], "passed": bool(r.get("passed")),
                  "first_relevant": r.get("first_relevant_rank"), "latency_ms": r.get("latency_ms"),
                  "judge": _judge_cell(r.get("judge"))} for r in results],
    )


# ---- comparing two runs ----------------------------------------------------------------------


def load_run(out_dir: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The summary and results a ``rag eval --out`` folder holds."""
    d = Path(out_dir)
    if not (d / "summary.json").is_file() or not (d / "results.jsonl").is_file():
        raise ConfigError(f"{d} is not a `rag eval --out` folder (summary.json and results.jsonl are needed)")
    try:
        summary = json.loads((d / "summary.json").read_text(encoding="utf-8"))
        with (d / "results.jsonl").open(encoding="utf-8") as f:
            results = [json.loads(line) for line in f if line.strip()]
    except ValueError as exc:
        raise ConfigError(f"{d} holds a damaged eval output: {exc}") from None
    return summary, results


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, float | int | None]:
    """Numeric leaves as "section.metric" (per-topic figures, skipped rows and run settings are left out)."""
    out: dict[str, float | int | None] = {}
    for key, value in d.items():
        if not prefix and key in ("by_topic", "skipped_rows", "run"):
            continue
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        elif value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
            out[prefix + key] = value
    return out


def compare_runs(dir_a: str | Path, dir_b: str | Path) -> dict[str, Any]:
    """Metrics side by side (B minus A as delta) and the questions whose pass/fail flipped."""
    (sa, ra), (sb, rb) = load_run(dir_a), load_run(dir_b)
    fa, fb = _flatten(sa), _flatten(sb)
    metrics = []
    for key in [*fa, *(k for k in fb if k not in fa)]:
        a, b = fa.get(key), fb.get(key)
        delta = round(b - a, 4) if isinstance(a, (int, float)) and isinstance(b, (int, float)) else None
        metrics.append({"metric": key, "a": a, "b": b, "delta": delta})
    by_a, by_b = {r["id"]: r for r in ra}, {r["id"]: r for r in rb}
    common = [i for i in by_a if i in by_b]

    def flip(i: str, side: dict[str, dict[str, Any]]) -> dict[str, Any]:
        return {"id": i, "question": by_a[i]["question"], "reasons": side[i].get("reasons") or []}

    return {
        "a": {"dir": str(dir_a), "run": sa.get("run") or {}},
        "b": {"dir": str(dir_b), "run": sb.get("run") or {}},
        "metrics": metrics,
        "passed_in_a_failed_in_b": [flip(i, by_b) for i in common if by_a[i]["passed"] and not by_b[i]["passed"]],
        "failed_in_a_passed_in_b": [flip(i, by_a) for i in common if not by_a[i]["passed"] and by_b[i]["passed"]],
        "only_in_a": [i for i in by_a if i not in by_b],
        "only_in_b": [i for i in by_b if i not in by_a],
    }


def format_comparison(cmp: dict[str, Any]) -> str:
    """The comparison as a plain-text table and lists, for the terminal."""
    lines = [f"A: {cmp['a']['dir']}", f"B: {cmp['b']['dir']}", ""]
    width = max(len(m["metric"]) for m in cmp["metrics"]) if cmp["metrics"] else 6
    lines.append(f"{'metric':<{width}}  {'A':>10}  {'B':>10}  {'delta':>10}")
    for m in cmp["metrics"]:
        delta = "" if m["delta"] is None else ("+" if m["delta"] > 0 else "") + _fmt(m["delta"])
        lines.append(f"{m['metric']:<{width}}  {_fmt(m['a']):>10}  {_fmt(m['b']):>10}  {delta:>10}")
    for key, title, side in (("passed_in_a_failed_in_b", "passed in A, failed in B", "B"),
                             ("failed_in_a_passed_in_b", "failed in A, passed in B", "A")):
        flips = cmp[key]
        lines += ["", f"{title} ({len(flips)}):"]
        lines += [f"  {f['id']}  {f['question']}  — in {side}: {'; '.join(f['reasons'])}" for f in flips] or ["  none"]
    for key, title in (("only_in_a", "only in A"), ("only_in_b", "only in B")):
        if cmp[key]:
            lines += ["", f"{title} ({len(cmp[key])}): {', '.join(cmp[key])}"]
    return "\n".join(lines)
