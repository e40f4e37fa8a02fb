"""Offline semantic search and cited question answering over Chinese (and mixed-language) documents."""

from .config import Settings
from .errors import RagError
from .pipeline import RAG
from .types import Answer, Chunk, Citation, IndexReport, Passage

__all__ = ["RAG", "Answer", "Chunk", "Citation", "IndexReport", "Passage", "RagError", "Settings"]
__version__ = "0.1.0"
