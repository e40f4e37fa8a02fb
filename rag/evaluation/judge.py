"""Optional LLM judge for ``rag eval --judge provider:model``.

For every answered question (not abstained, no error) a chat model is shown the question, the
reference answer, the system's answer and the passages it cites, and asked for a JSON verdict
``{"correct": 0|1, "faithful": 0|1, "reason": "..."}``. The verdict goes into that question's
result under ``"judge"``; the run's ``summary["judge"]`` holds:

    n             answered questions sent to the judge
    correctness   share of usable verdicts with correct = 1 (null when there is none)
    faithfulness  share of usable verdicts with faithful = 1 (null when there is none)
    errors        calls that failed or whose reply was not a valid verdict

It is kept apart from the deterministic metrics on purpose: an LLM's verdict depends on the
model and the prompt, so it is extra evidence, never a replacement. A failed call is counted
and the run goes on.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from rag.errors import ConfigError

SYSTEM_PROMPT = """You grade a question-answering system that answers from a set of documents.
You are given the question, the reference answer, the system's answer and the passages it cites.
Reply with exactly one JSON object and nothing else:
{"correct": 0 or 1, "faithful": 0 or 1, "reason": "one short sentence"}
correct = 1 when the system's answer gives the same facts as the reference answer (wording,
language and extra correct detail do not matter). When the reference is "(none)" the documents do
not answer the question, and correct = 1 only if the system says it cannot answer.
faithful = 1 when every claim in the system's answer is supported by the cited passages."""

_PASSAGE_CHARS = 1500  # enough for a whole chunk; keeps a prompt bounded whatever the chunking
_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


def parse_verdict(text: str) -> dict[str, Any]:
    """The verdict in a judge's reply (code fences and chatter around the JSON object are tolerated).

    Raises ``ValueError`` (or ``TypeError``) when there is no JSON object, or ``correct``/``faithful``
    is not 0 or 1.
    """
    match = _OBJECT.search(text or "")
    if not match:
        raise ValueError(f"no JSON object in the judge's reply: {(text or '')[:80]!r}")
    obj = json.loads(match.group(0))  # a ValueError too when it is not JSON
    if not isinstance(obj, dict):
        raise TypeError("the judge's reply is not a JSON object")
    verdict: dict[str, Any] = {}
    for key in ("correct", "faithful"):
        value = obj.get(key)
        if isinstance(value, str) and value.strip() in ("0", "1"):
            value = int(value)
        if isinstance(value, str) or value not in (0, 1):  # bool and 1.0 are accepted, as 1
            raise ValueError(f"{key!r} must be 0 or 1, got {obj.get(key)!r}")
        verdict[key] = int(value)
    verdict["reason"] = str(obj.get("reason") or "")
    return verdict


def build_prompt(result: dict[str, Any]) -> str:
    """The user message for one ``evaluate_row`` result: question, reference, answer, cited passages."""
    reference = result.get("reference")
    if not reference and result.get("key_facts"):
        reference = "; ".join(" / ".join(f) for f in result["key_facts"])
    retrieved = result.get("retrieved") or []
    cited = sorted({c["n"] for c in result.get("citations") or [] if 1 <= c["n"] <= len(retrieved)})
    passages = "\n\n".join(
        f"[{n}] ({retrieved[n - 1]['doc_id']}) {retrieved[n - 1].get('text', '')[:_PASSAGE_CHARS]}" for n in cited
    ) or "(no passage cited)"
    return (f"Question:\n{result['question']}\n\nReference answer:\n{reference or '(none)'}\n\n"
            f"System answer:\n{result['answer']}\n\nCited passages:\n{passages}")


def _reply_text(message: Any) -> str:
    text = getattr(message, "text", None)
    if isinstance(text, str):  # a (callable) str property since langchain-core 1.0
        return str(text)
    if callable(text):  # a method before
        text = text()
    return text if isinstance(text, str) else str(getattr(message, "content", message))


@dataclass
class Judge:
    model: Any  # a LangChain chat model
    spec: str

    @classmethod
    def from_spec(cls, spec: str, timeout: float = 60.0, retries: int = 2) -> Judge:
        """Resolve ``provider:model`` with LangChain's ``init_chat_model`` (credentials from the environment)."""
        provider, sep, name = spec.partition(":")
        if not sep or not provider.strip() or not name.strip():
            raise ConfigError(f"--judge must be provider:model, e.g. openai:gpt-4o-mini. Currently, it is {spec!r}")
        try:
            from langchain.chat_models import init_chat_model  # noqa: PLC0415 - slow import, judge only

            extras = {"temperature": 0, "timeout": timeout, "max_retries": retries}
            try:
                model = init_chat_model(name, model_provider=provider, **extras)
            except (TypeError, ValueError):  # a provider without these options: take its defaults
                model = init_chat_model(name, model_provider=provider)
        except Exception as exc:
            raise ConfigError(f"cannot start the judge {spec}: {_one_line(exc)}") from None
        return cls(model, spec)

    def verdict(self, result: dict[str, Any]) -> dict[str, Any]:
        """One question's verdict; raises whatever the call or ``parse_verdict`` raises."""
        reply = self.model.invoke([("system", SYSTEM_PROMPT), ("human", build_prompt(result))])
        return parse_verdict(_reply_text(reply))


def judge_results(judge: Judge, results: list[dict[str, Any]], progress: bool = False) -> dict[str, Any]:
    """Ask the judge about every answered result (adding ``result["judge"]``); return ``summary["judge"]``."""
    from tqdm import tqdm  # noqa: PLC0415 - tqdm (~0.3 s) only while a judge runs

    answered = [r for r in results if not r["abstained"] and not r.get("error")]
    verdicts, errors = [], 0
    for r in tqdm(answered, desc="judging", unit="q", disable=not progress):
        try:
            r["judge"] = judge.verdict(r)
            verdicts.append(r["judge"])
        except Exception as exc:
            r["judge"] = {"error": _one_line(exc)}
            errors += 1

    def share(key: str) -> float | None:
        return round(sum(v[key] for v in verdicts) / len(verdicts), 4) if verdicts else None

    return {"model": judge.spec, "n": len(answered), "correctness": share("correct"),
            "faithfulness": share("faithful"), "errors": errors}
