"""Follow-up questions without an LLM: a question that leans on the previous turn is asked with it.

An LLM rewrites a follow-up into a standalone question (``LLMGenerator.rewrite``); the offline answerer
cannot, so it does the plain thing that retrieval and the reader can use: the follow-up, then the
previous question(s) it leans on. "Leans on" is a pronoun or demonstrative (他, 其, 该, 这, "it", "they"…),
or a question so short it can only be completing the last one. The follow-up comes first because the
reader keeps a question's start when it must cut it (``rag.generation.reader.MAX_QUESTION``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# 他/她/它(们), 其, 该/該, 这/這/那 (+ measure word or 里/儿), 此, 上述; English personal and demonstrative pronouns
_LEANING = re.compile(r"[他她它其该該此]|[这這那][个個位些里裡儿兒次年座家所种種本部件项項条條]?|上述"
                      r"|\b(?:he|she|it|its|they|them|their|his|her|this|that|these|those)\b", re.I)
_CJK = re.compile(r"[\u3400-\u9fff]")
SHORT = 5  # CJK characters: a question this short ("哪一年？", "为什么") completes the last one
HISTORY = 1  # earlier questions added


def leans_on_history(question: str) -> bool:
    """A pronoun or demonstrative, or a very short CJK question."""
    cjk = len(_CJK.findall(question))
    return bool(_LEANING.search(question)) or 0 < cjk <= SHORT


def with_history(question: str, turns: Sequence[tuple[str, str]]) -> str:
    """The question, then the last ``HISTORY`` user questions before it when it leans on them."""
    earlier = [text.strip() for role, text in turns if role == "user" and text.strip() and text.strip() != question.strip()]
    if not earlier or not leans_on_history(question):
        return question
    return " ".join([question.strip(), *earlier[-HISTORY:]])


__all__ = ["leans_on_history", "with_history"]
