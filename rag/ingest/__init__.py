"""Source files to chunks: finding files, decoding, formats (HTML, PDF, DOCX behind zip and work bounds), cleaning with offsets kept, the structure of a page (articles, sections), chunking.

May import rag.text, rag.types, rag.errors.
"""
