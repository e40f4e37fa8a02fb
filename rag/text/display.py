"""Document text as a reader should see it in a quote or a source card: markup out, glyphs gone.

Chunks keep the source's characters, so that offsets map back to the file: a Markdown page's ``**``
and ``[text](url)``, an HTML fragment's tags, a PDF's page break (``\\f``, drawn as a box), and lines
that end a sentence and start the next without a space (``year before.The busiest``) are all in
them. ``display`` is applied where text is shown (the answer's quote, ``Citation.quote``, the chat's
source cards), never to what is indexed or to offsets, and to quotes and cards alike, so a quote is
still found inside its card. Line breaks are kept (cards show paragraphs); callers that want one line
collapse whitespace themselves.
"""

from __future__ import annotations

import html
import re

_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>\n]{0,300})?/?>")  # an HTML tag, not "a < b > c"
_LINK = re.compile(r"!?\[([^\]\n]{0,300})\]\((?:[^()\s]|\([^()\s]{0,100}\)){0,500}(?:\s+\"[^\"\n]{0,200}\")?\)")
_STRONG = re.compile(r"\*\*|__")
_EMPHASIS = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]{1,300}?)(?<=\S)\*(?![\w*])")
_CODE = re.compile(r"`+")
_LINE_MARK = re.compile(r"(?m)^[ \t]{0,3}(?:#{1,6}|>)[ \t]+")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ufffc]")  # \f (a PDF's page break) among them; \t and \n stay
_JOINED = re.compile(r"(?<=[a-z]{2}[.!?])(?=[A-Z][a-z])")  # "before.The": two sentences that lost their space
_ENTITY = re.compile(r"&(?:[A-Za-z]{2,8}|#[0-9]{1,7}|#x[0-9A-Fa-f]{1,6});")


def display(text: str) -> str:
    """``text`` without Markdown or HTML markup, control glyphs replaced by spaces, and a space where
    two English sentences were glued together."""
    if not text:
        return text
    out = _CONTROL.sub(" ", text)
    if "<" in out:
        out = _TAG.sub("", out)
    if "&" in out and _ENTITY.search(out):
        out = html.unescape(out)
    if "](" in out:
        out = _LINK.sub(r"\1", out)
    if "*" in out or "_" in out:
        out = _EMPHASIS.sub(r"\1", _STRONG.sub("", out))
    if "`" in out:
        out = _CODE.sub("", out)
    if "#" in out or ">" in out:
        out = _LINE_MARK.sub("", out)
    return _JOINED.sub(" ", out)


__all__ = ["display"]
