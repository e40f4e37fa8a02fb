"""PDFs made in a test: Chinese text on numbered pages, through reportlab's built-in CID font (no font files)."""

from __future__ import annotations

import pytest


def make_pdf(path, pages: list[list[str]]) -> None:
    """Write ``pages`` (each a list of lines) to ``path``; skips the test when reportlab is missing."""
    pytest.importorskip("reportlab")
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    c = canvas.Canvas(str(path))
    for lines in pages:
        c.setFont("STSong-Light", 12)
        for i, line in enumerate(lines):
            c.drawString(60, 760 - 18 * i, line)
        c.showPage()
    c.save()
