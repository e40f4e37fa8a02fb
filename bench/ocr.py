"""OCR accuracy and speed on pages rendered here from real Chinese text, for the engines compared, in one run.

    python bench/ocr.py [--engines rapidocr,tesseract] [--seed 7] [--out test-output/ocr]

Every page is rendered from text taken from seeds/ and ../shared/data/news-distractors-dev.jsonl
(deterministic: ``--seed``), at 150 DPI on A4 (1240 × 1754 pixels), with the Noto CJK fonts
(fonts-noto-cjk). Page kinds:

- ``sc-sans``: simplified Chinese, Noto Sans CJK SC, 12 pt; ``sc-serif-small``: Noto Serif CJK SC, 10 pt;
- ``tc-sans``: the same text in traditional characters (OpenCC s2t), Noto Sans CJK TC;
- ``mixed-en``: Chinese paragraphs and English sentences;
- ``rotated-noisy``: tilted 1.5°, Gaussian noise and speckles;
- ``two-columns``: two text columns under a title spanning both;
- ``table``: a ruled table of short cells (read row by row);
- ``photo``: a page as a phone photographs it: perspective warp, uneven light, blur, JPEG at quality 40.

Character accuracy is 1 − edit distance / length of the text the page was rendered from, both in NFKC
(full-width punctuation as ASCII) without whitespace; traditional is compared as traditional, and
also folded to simplified (``tc-sans folded``: what retrieval compares, rag.text.script). The
engines: ``rag.ingest.ocr`` (RapidOCR, PP-OCRv4, what indexing runs, with its reading order) and
Tesseract 5 (``tesseract-ocr``, chi_sim/chi_tra + eng, when installed; given the page upscaled to
300 DPI, the resolution it asks for). The baseline, in the same run: the text layer of the ``sc-sans``
page written as a PDF (reportlab) and read back by pypdf, the ceiling no OCR can pass. Seconds per
page are wall clock on this machine's cores (with whatever else runs on them).

Last: while a page is OCR'd on a thread, how much of its solo speed a pure-Python loop on the main
thread keeps (onnxruntime releases the GIL: the server's other requests keep running).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
import unicodedata
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from bench.corpus import DEFAULT_DISTRACTORS, ROOT

W, H = 1240, 1754  # A4 at 150 DPI
MARGIN = 100
FONTS = "/usr/share/fonts/opentype/noto"
# face index inside the .ttc: JP 0, KR 1, SC 2, TC 3, HK 4 (fc-list | grep -i cjk)
SANS_SC = (f"{FONTS}/NotoSansCJK-Regular.ttc", 2)
SANS_TC = (f"{FONTS}/NotoSansCJK-Regular.ttc", 3)
SERIF_SC = (f"{FONTS}/NotoSerifCJK-Regular.ttc", 2)
ENGLISH = [
    "The committee approved the 2024 budget of 3.5 million yuan on March 12.",
    "Inspectors visited 27 restaurants and closed two of them for repairs.",
    "Please submit the form before Friday, 5 p.m., to the front office.",
    "Revenue grew by 12.4% year on year, driven by exports to Europe.",
]


def sources(seed: int) -> list[str]:
    """Paragraphs of real Chinese text: seeds/ and the distractor news, shuffled by ``seed``."""
    paras = []
    for f in sorted((ROOT / "seeds").glob("*.txt")):
        paras += [p.strip() for p in f.read_text(encoding="utf-8").split("\n") if len(p.strip()) >= 40]
    if DEFAULT_DISTRACTORS.exists():
        with DEFAULT_DISTRACTORS.open(encoding="utf-8") as fh:
            for line in list(fh)[:200]:
                text = json.loads(line)["text"]
                paras += [p.strip() for p in text.split("\n") if len(p.strip()) >= 40]
    random.Random(seed).shuffle(paras)
    return paras


def wrap(text: str, font: ImageFont.FreeTypeFont, width: float) -> list[str]:
    """``text`` cut into lines no wider than ``width`` (by each character's advance; English by words)."""
    lines, cur = [], ""
    for token in _tokens(text):
        if cur and font.getlength(cur + token) > width:
            lines.append(cur.rstrip())
            cur = token.lstrip()
        else:
            cur += token
    if cur.strip():
        lines.append(cur.rstrip())
    return lines


def _tokens(text: str) -> list[str]:
    out, word = [], ""
    for ch in text:
        if ch.isascii() and not ch.isspace():
            word += ch
            continue
        if word:
            out.append(word)
            word = ""
        out.append(ch)
    return out + ([word] if word else [])


def text_page(paras: list[str], face: tuple[str, int], size: int, left: int = MARGIN, right: int = W - MARGIN,
              top: int = MARGIN, bottom: int = H - MARGIN, image: Image.Image | None = None) -> tuple[Image.Image, list[str]]:
    """Paragraphs set on a page (or into a region of ``image``) until it is full; the image and the lines set."""
    font = ImageFont.truetype(face[0], size, index=face[1])
    image = image or Image.new("L", (W, H), 255)
    draw = ImageDraw.Draw(image)
    y, lead, done = top, int(size * 1.6), []
    for para in paras:
        for line in wrap(para, font, right - left):
            if y + lead > bottom:
                return image, done
            draw.text((left, y), line, font=font, fill=0)
            done.append(line)
            y += lead
        y += lead // 2
    return image, done


def make_pages(seed: int) -> dict[str, tuple[Image.Image, str]]:
    """Each page kind: its image and the text it was rendered from, in reading order."""
    import opencc

    rng = random.Random(seed)
    paras = sources(seed)
    take = iter(paras)
    pages: dict[str, tuple[Image.Image, str]] = {}

    def next_paras(n: int) -> list[str]:
        return [next(take) for _ in range(n)]

    sc = next_paras(12)
    im, lines = text_page(sc, SANS_SC, 25)
    pages["sc-sans"] = (im, "\n".join(lines))
    im, lines = text_page(next_paras(16), SERIF_SC, 21)
    pages["sc-serif-small"] = (im, "\n".join(lines))
    tc = [opencc.OpenCC("s2t").convert(p) for p in next_paras(12)]
    im, lines = text_page(tc, SANS_TC, 25)
    pages["tc-sans"] = (im, "\n".join(lines))
    mixed = [p for pair in zip(next_paras(4), ENGLISH) for p in pair]
    im, lines = text_page(mixed, SANS_SC, 25)
    pages["mixed-en"] = (im, "\n".join(lines))

    im, lines = text_page(next_paras(12), SANS_SC, 25)
    im = im.rotate(1.5, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=255)
    arr = np.asarray(im, dtype=np.float32) + np.random.default_rng(seed).normal(0, 18, (H, W))
    speck = np.random.default_rng(seed + 1).random((H, W)) < 0.002
    arr[speck] = 0
    pages["rotated-noisy"] = (Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)), "\n".join(lines))

    title_font = ImageFont.truetype(SANS_SC[0], 40, index=SANS_SC[1])
    title = next_paras(1)[0][:18]
    im = Image.new("L", (W, H), 255)
    ImageDraw.Draw(im).text((MARGIN, MARGIN), title, font=title_font, fill=0)
    mid = W // 2
    col = next_paras(10)
    im, left = text_page(col[:5], SANS_SC, 23, MARGIN, mid - 25, MARGIN + 90, image=im)
    im, right = text_page(col[5:], SANS_SC, 23, mid + 25, W - MARGIN, MARGIN + 90, image=im)
    pages["two-columns"] = (im, "\n".join([title, *left, *right]))

    pages["table"] = table_page(rng, paras)
    photo_src, photo_lines = text_page(next_paras(10), SANS_SC, 27)
    pages["photo"] = (photograph(photo_src, seed), "\n".join(photo_lines))
    return pages


def table_page(rng: random.Random, paras: list[str]) -> tuple[Image.Image, str]:
    """A ruled table: a header row and 14 rows of a name, a place, a date and figures."""
    font = ImageFont.truetype(SANS_SC[0], 24, index=SANS_SC[1])
    words = [w for p in paras[:200] for w in (p[i:i + 4] for i in range(0, 40, 4)) if all(_is_cjk(c) for c in w)]
    header = ["项目名称", "所在地区", "开工日期", "投资(万元)", "完成率"]
    rows = [header]
    for _ in range(14):
        rows.append([rng.choice(words) + rng.choice(words)[:2], rng.choice(words)[:3] + "区",
                     f"{rng.randint(2019, 2025)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                     f"{rng.randint(100, 99999):,}", f"{rng.randint(10, 100)}%"])
    im = Image.new("L", (W, H), 255)
    draw = ImageDraw.Draw(im)
    xs = [MARGIN, MARGIN + 260, MARGIN + 440, MARGIN + 640, MARGIN + 860, W - MARGIN]
    y = MARGIN + 40
    for row in rows:
        draw.line([(xs[0], y), (xs[-1], y)], fill=0, width=2)
        for x, cell in zip(xs, row):
            draw.text((x + 14, y + 14), cell, font=font, fill=0)
        y += 64
    draw.line([(xs[0], y), (xs[-1], y)], fill=0, width=2)
    for x in xs:
        draw.line([(x, MARGIN + 40), (x, y)], fill=0, width=2)
    return im, "\n".join(" ".join(r) for r in rows)


def _is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff"


def photograph(page: Image.Image, seed: int) -> Image.Image:
    """``page`` as a phone photographs it: on a desk, warped in perspective, lit from one side, blurred, JPEG."""
    import cv2

    rng = np.random.default_rng(seed)
    src = np.float32([[0, 0], [W, 0], [W, H], [0, H]])
    jitter = rng.uniform(-1, 1, (4, 2)).astype(np.float32) * np.float32([45, 35])
    dst = np.float32([[60, 50], [W - 30, 20], [W - 70, H - 40], [20, H - 60]]) + jitter
    warped = cv2.warpPerspective(np.asarray(page), cv2.getPerspectiveTransform(src, dst), (W, H),
                                 flags=cv2.INTER_LINEAR, borderValue=90)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    light = 0.62 + 0.38 * (1 - np.hypot(xx - 0.25 * W, yy - 0.2 * H) / np.hypot(W, H))  # brighter at top left
    shot = warped.astype(np.float32) * light + rng.normal(0, 6, (H, W))
    im = Image.fromarray(np.clip(shot, 0, 255).astype(np.uint8)).convert("RGB")
    im = im.filter(ImageFilter.GaussianBlur(1.1))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=40)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def normal(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


def accuracy(truth: str, got: str) -> float:
    a, b = normal(truth), normal(got)
    return max(0.0, 1 - edit_distance(a, b) / max(len(a), 1))


def edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def run_rapidocr(image: Image.Image, kind: str) -> str:
    from rag.ingest.ocr import recognise
    from rag.ingest.scans import page_image

    return "\n".join(line.text for line in recognise(page_image(image), "bench", "image"))


def run_tesseract(image: Image.Image, kind: str) -> str:
    langs = ("chi_tra" if kind.startswith("tc") else "chi_sim") + "+eng"
    buf = io.BytesIO()
    image.resize((image.width * 2, image.height * 2), Image.Resampling.LANCZOS).save(buf, "PNG")
    out = subprocess.run(["tesseract", "stdin", "stdout", "-l", langs, "--psm", "3"], input=buf.getvalue(),
                         capture_output=True, check=True)
    return out.stdout.decode("utf-8")


def text_layer_baseline(text: str) -> float:
    """The ``sc-sans`` text as a PDF text layer (reportlab's built-in CID font), read back by pypdf."""
    from pypdf import PdfReader
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    buf = io.BytesIO()
    c = canvas.Canvas(buf)
    c.setFont("STSong-Light", 11)
    for i, line in enumerate(text.split("\n")):
        c.drawString(40, 800 - 15 * i, line)
    c.showPage()
    c.save()
    got = "".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(buf.getvalue())).pages)
    return accuracy(text, got)


def gil_share(image: Image.Image) -> float:
    """The main thread's pure-Python loop rate while a page is OCR'd on another thread, over its solo rate."""
    from rag.ingest.ocr import recognise
    from rag.ingest.scans import page_image

    def spin(seconds: float) -> float:
        n, end = 0, time.perf_counter() + seconds
        while time.perf_counter() < end:
            n += 1
        return n / seconds

    solo = spin(2.0)
    worker = threading.Thread(target=recognise, args=(page_image(image), "bench", "image"))
    worker.start()
    t0, n = time.perf_counter(), 0
    while worker.is_alive():
        n += 1
    busy = n / (time.perf_counter() - t0)
    worker.join()
    return busy / solo


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--engines", default="rapidocr,tesseract")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, default=None, help="write the rendered pages here as PNG")
    args = ap.parse_args()

    import opencc

    pages = make_pages(args.seed)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        for kind, (im, text) in pages.items():
            im.save(args.out / f"{kind}.png")
            (args.out / f"{kind}.txt").write_text(text, encoding="utf-8")
    engines = {"rapidocr": run_rapidocr, "tesseract": run_tesseract}
    wanted = [e for e in args.engines.split(",") if e in engines]
    if "tesseract" in wanted and not shutil.which("tesseract"):
        print("tesseract not installed (apt-get install tesseract-ocr tesseract-ocr-chi-sim tesseract-ocr-chi-tra): left out")
        wanted.remove("tesseract")
    print(f"{len(pages)} pages of {W}x{H}, {os.cpu_count()} CPUs; baseline (sc-sans as a PDF text layer, pypdf): "
          f"{text_layer_baseline(pages['sc-sans'][1]):.2%}")
    if "rapidocr" in wanted:
        from rag.ingest.ocr import engine

        t0 = time.perf_counter()
        engine("bench", "image")
        print(f"rapidocr: engine loaded in {time.perf_counter() - t0:.1f} s")
    print(f"{'page':<16}{'chars':>6}" + "".join(f"{e + ' acc':>16}{'s/page':>9}" for e in wanted))
    totals = {e: [0.0, 0, 0.0] for e in wanted}  # seconds, pages, accuracy sum
    fold = opencc.OpenCC("t2s").convert
    for kind, (im, text) in pages.items():
        row = f"{kind:<16}{len(normal(text)):>6}"
        folded = f"{kind + ' folded':<22}"
        for e in wanted:
            t0 = time.perf_counter()
            got = engines[e](im, kind)
            dt = time.perf_counter() - t0
            acc = accuracy(text, got)
            totals[e][0] += dt
            totals[e][1] += 1
            totals[e][2] += acc
            row += f"{acc:>16.2%}{dt:>9.1f}"
            folded += f"{accuracy(fold(text), fold(got)):>16.2%}{'':>9}"
            if args.out:
                (args.out / f"{kind}.{e}.txt").write_text(got, encoding="utf-8")
        print(row, flush=True)
        if kind.startswith("tc"):
            print(folded, flush=True)
    for e, (seconds, n, acc) in totals.items():
        print(f"{e}: mean accuracy {acc / n:.2%}, {n / seconds:.3f} pages/s ({seconds / n:.1f} s/page)")
    if "rapidocr" in wanted:
        print(f"GIL: a Python loop on the main thread kept {gil_share(pages['sc-sans'][0]):.0%} of its solo speed "
              "while a page was OCR'd on another thread")


if __name__ == "__main__":
    main()
