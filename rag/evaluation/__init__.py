"""Question sets to scores: datasets (JSONL, CSV, SQuAD), metrics, the run, the HTML report, an optional LLM judge.

May import every stage below it; the pipeline reaches it only through RAG.evaluate.
"""
