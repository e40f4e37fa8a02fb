"""Running an evaluation: ask every question of a question set, score it, and write the report.

What each figure means is defined in the docstring of ``rag.evaluation.metrics``; the question
set's format in ``rag.evaluation.dataset``.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import ConfigError, RagError
from rag.evaluation.dataset import Dataset, dataset_from_dicts, load_dataset
from rag.evaluation.judge import Judge, judge_results
from rag.evaluation.metrics import error_row, evaluate_row, summarize
from rag.evaluation.report import render_html


def accepts_keyword(fn: Callable[..., Any], name: str) -> bool:
    """Whether ``fn`` takes ``name=``: lets ``run`` pass ``generator`` only to a ``RAG.ask`` that has it."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def run(rag: Any, dataset: Dataset, top_k: int | None = None, progress: bool = True,
        retrieval: str | None = None, generator: str | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Ask every question; return the summary and the per-question results."""
    from tqdm import tqdm  # noqa: PLC0415 - tqdm (~0.3 s) only while questions are asked

    k = rag.settings.top_k if top_k is None else top_k
    if k < 1:  # checked once here, or every row would fail with the same error
        raise ConfigError("top_k.not_positive", top_k=k)
    options: dict[str, Any] = {"top_k": k, "retrieval": retrieval}
    if generator is not None:
        if not accepts_keyword(rag.ask, "generator"):
            raise ConfigError("this version of RAG.ask takes no generator= option; drop --generator")
        options["generator"] = generator
    results: list[dict[str, Any]] = []
    first_errors: list[RagError] = []
    for row in tqdm(dataset.rows, desc="evaluating", unit="q", disable=not progress):
        t0 = time.perf_counter()
        try:
            answer = rag.ask(row.question, **options)
        except RagError as exc:
            # One bad question (too long, an LLM timeout) must not lose the whole run; but when the
            # first few all fail it is a setting problem, better reported at once as itself.
            results.append(error_row(row, exc, (time.perf_counter() - t0) * 1000))
            if len(first_errors) == len(results) - 1:
                first_errors.append(exc)
                if len(first_errors) == min(3, len(dataset.rows)):
                    raise first_errors[0] from None
            continue
        results.append(evaluate_row(row, answer, (time.perf_counter() - t0) * 1000))
    return summarize(results, k), results


@dataclass
class EvalReport:
    """What ``evaluate`` returns: the summary (as ``rag eval --json`` prints it), per-question results, skipped rows."""

    summary: dict[str, Any]
    results: list[dict[str, Any]]
    errors: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.results if not r["passed"]]

    def to_dict(self) -> dict[str, Any]:
        return {"summary": self.summary, "results": self.results, "errors": self.errors}

    def write(self, out_dir: str | Path) -> list[Path]:
        """Write summary.json, results.jsonl and the self-contained report.html into ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / "summary.json", out / "results.jsonl", out / "report.html"]
        paths[0].write_text(json.dumps(self.summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        with paths[1].open("w", encoding="utf-8") as f:
            for r in self.results:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        paths[2].write_text(render_html(self.summary, self.results, self.errors), encoding="utf-8")
        return paths


def evaluate(rag: Any, dataset_or_path: Dataset | str | Path | Iterable[dict[str, Any]], top_k: int | None = None,
             retrieval: str | None = None, generator: str | None = None, progress: bool = False, *,
             strict: bool = False, judge: Any = None) -> EvalReport:
    """Ask every question of a question set (a ``Dataset``, a JSONL/CSV path or a list of dicts) and score it.

    ``judge`` is an optional ``provider:model`` spec (or a ``rag.evaluation.judge.Judge``): each
    answered question then also gets an LLM verdict, reported apart under ``summary["judge"]``.
    """
    if isinstance(dataset_or_path, Dataset):
        dataset = dataset_or_path
    elif isinstance(dataset_or_path, (str, Path)):
        dataset = load_dataset(dataset_or_path, strict=strict)
    else:
        dataset = dataset_from_dicts(dataset_or_path, strict=strict)
    settings = getattr(rag, "settings", None)
    if isinstance(judge, str):  # built before the run, so a bad spec fails before minutes of questions
        judge = Judge.from_spec(judge, timeout=getattr(settings, "llm_timeout", 60.0),
                                retries=getattr(settings, "llm_retries", 2))
    summary, results = run(rag, dataset, top_k=top_k, progress=progress, retrieval=retrieval, generator=generator)
    summary["skipped_rows"] = list(dataset.errors)
    summary["run"] = {
        "dataset": dataset.source, "index_dir": str(getattr(rag, "index_dir", "")),
        "top_k": summary["retrieval"]["k"], "retrieval": retrieval or getattr(settings, "retrieval", None),
        "generator": generator or getattr(settings, "generator", None),
    }
    if dataset.paragraphs:
        summary["run"].update({"paragraphs": len(dataset.paragraphs),
                               "indexed_paragraphs": sum(not p.held_out for p in dataset.paragraphs),
                               "holdout_every": dataset.holdout_every or None,
                               "questions_every": dataset.sample_every if dataset.sample_every > 1 else None})
    if judge is not None:
        summary["judge"] = judge_results(judge, results, progress=progress)
    return EvalReport(summary, results, list(dataset.errors))
