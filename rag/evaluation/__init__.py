"""Question sets to scores: datasets (JSONL, CSV, SQuAD), metrics, the run, the HTML report, an optional LLM judge.

    dataset   reading a question set, with the malformed rows reported by line (SQuAD: by position)
    collection  a SQuAD-format file's paragraphs as the indexed collection (the open-domain protocol)
    metrics   what every figure means (its docstring defines each one) and the code that computes it
    run       asking the questions, the summary of a run, ``EvalReport`` and its ``write()``
    report    the self-contained report.html (Jinja2 templates in ``templates``), comparing two runs
    judge     the optional LLM judge, reported apart from the metrics

May import every stage below it; the pipeline reaches it only through RAG.evaluate.
"""

from rag.evaluation.dataset import Dataset, DatasetError, Row, dataset_from_dicts, load_dataset
from rag.evaluation.report import compare_runs, format_comparison, render_html
from rag.evaluation.run import EvalReport, evaluate, run

__all__ = [
    "Dataset", "DatasetError", "EvalReport", "Row", "compare_runs", "dataset_from_dicts", "evaluate",
    "format_comparison", "load_dataset", "render_html", "run",
]
