"""Text shared by every stage: normalisation (width folding, simplified/traditional folding, jieba words) and token counts.

Imports nothing else of rag.
"""
