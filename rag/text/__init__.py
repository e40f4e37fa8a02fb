"""Text shared by every stage: normalisation (width folding, jieba words), traditional folded to simplified
(``script.fold_script``, re-exported by ``normalize``) and token counts.

Imports nothing else of rag but rag.errors.
"""
