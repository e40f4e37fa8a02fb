"""Offline semantic search and cited question answering over Chinese (and mixed-language) documents."""

from rag.bases import KnowledgeBases
from rag.config import Settings
from rag.errors import RagError
from rag.pipeline import RAG
from rag.types import Answer, Chunk, Citation, IndexReport, Passage

__all__ = ["RAG", "Answer", "Chunk", "Citation", "IndexReport", "KnowledgeBases", "Passage", "RagError", "Settings"]
__version__ = "0.1.0"
