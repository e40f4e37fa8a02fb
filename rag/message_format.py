"""One message template (``str.format`` syntax): rendered from parameters, or recognised in rendered text.

A template is written once, e.g. ``"{name}: file is {mb:.1f} MB, over the {limit:g} MB limit"``. It renders
from raw parameters (``mb=12.345`` → ``12.3``), and it recognises text it rendered earlier, when only
the text travelled (an index report's skipped reasons, an answer's warnings): ``match`` gives each
replacement field's text as it was shown, keyed by the field as written (``mb:.1f``), so a second
template using the same fields can show them again without knowing the raw values.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from functools import cached_property
from typing import Any

_FORMATTER = string.Formatter()


class Template:
    """A ``str.format`` template with plain field names (no indexing, attributes or positional fields)."""

    def __init__(self, text: str) -> None:
        self.text = text
        # (literal text, field name or None, conversion or None, format spec)
        self._parts = [(literal, field, conversion, spec or "")
                       for literal, field, spec, conversion in _FORMATTER.parse(text)]
        for _, field, _, _ in self._parts:
            if field is not None and not field.isidentifier():
                raise ValueError(f"template field {field!r} is not a plain name: {text!r}")
        # one named regex group per distinct shown field (``match`` returns them by field as written)
        self._groups = {key: f"f{i}" for i, key in enumerate(sorted(self.shown_fields))}

    @cached_property
    def _pattern(self) -> re.Pattern[str]:
        # compiled at the first match: the catalogue makes ~300 templates at import (15 ms of regexes)
        return re.compile(self._regex(), re.S)

    @property
    def fields(self) -> frozenset[str]:
        """The parameter names the template uses."""
        return frozenset(field for _, field, _, _ in self._parts if field is not None)

    @property
    def shown_fields(self) -> frozenset[str]:
        """Each field as written, with its conversion and format spec (``name!r``, ``mb:.1f``)."""
        return frozenset(_shown(f, c, s) for _, f, c, s in self._parts if f is not None)

    def render(self, params: Mapping[str, Any]) -> str:
        """The text with each field formatted from ``params`` (a missing one is a ``KeyError``)."""
        out = []
        for literal, field, conversion, spec in self._parts:
            out.append(literal)
            if field is not None:
                out.append(format(_converted(params[field], conversion), spec))
        return "".join(out)

    def render_shown(self, shown: Mapping[str, str]) -> str:
        """The text with each field replaced by ``shown[field as written]``, as ``match`` gives it."""
        return "".join(literal + (shown[_shown(f, c, s)] if f is not None else "")
                       for literal, f, c, s in self._parts)

    def match(self, text: str) -> dict[str, str] | None:
        """Each field's shown text (keyed as in ``shown_fields``) if ``text`` is this template rendered, else None."""
        m = self._pattern.fullmatch(text)
        if m is None:
            return None
        return {key: m[group] for key, group in self._groups.items()}

    def _regex(self) -> str:
        # a repeated field must show the same text again (a back reference)
        seen: set[str] = set()
        out = []
        for literal, field, conversion, spec in self._parts:
            out.append(re.escape(literal))
            if field is None:
                continue
            key = _shown(field, conversion, spec)
            out.append(f"(?P={self._groups[key]})" if key in seen else f"(?P<{self._groups[key]}>.*?)")
            seen.add(key)
        return "".join(out)

    def __repr__(self) -> str:
        return f"Template({self.text!r})"


def _shown(field: str, conversion: str | None, spec: str) -> str:
    return field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")


_CONVERSIONS = {"r": repr, "s": str, "a": ascii}


def _converted(value: Any, conversion: str | None) -> Any:
    return _CONVERSIONS[conversion](value) if conversion else value


__all__ = ["Template"]
