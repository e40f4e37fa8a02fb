"""The settings and command-line options of ``rag train-reader``, apart from the training itself: the CLI
builds every command's parser at start-up, and ``rag.training.reader_train`` imports the evaluation
package, the reader and its features (~35 ms of each cold ``rag ask``), which only training needs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CACHE = Path("/tmp/rag-reader-cache")


@dataclass(frozen=True)
class TrainSettings:
    split: int = 6  # frozen lower layers (their output is cached); the 12 - split upper ones train
    epochs: float = 2.0
    lr: float = 3e-4
    batch: int = 32
    seed: int = 13
    warmup: float = 0.06


def add_arguments(ap) -> None:
    d = TrainSettings()
    ap.add_argument("datasets", nargs="+", help="SQuAD-format JSON files (CMRC 2018 train and trial, DRCD dev)")
    ap.add_argument("--out", required=True, help="the reader file to write (safetensors; use it with RAG_READER=PATH)")
    ap.add_argument("--split", type=int, default=d.split, help=f"frozen lower layers (default {d.split} of 12)")
    ap.add_argument("--epochs", type=float, default=d.epochs, help=f"passes over the windows (default {d.epochs})")
    ap.add_argument("--lr", type=float, default=d.lr, help=f"learning rate (default {d.lr})")
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--limit", type=int, default=None, help="only the first N training questions of each set")
    ap.add_argument("--cache", default=str(CACHE), help=f"indexes and retrieved passages for the calibration (default {CACHE})")
    ap.add_argument("--no-calibration", action="store_true", help="skip the calibration (the thresholds stay at p = .5)")
    ap.add_argument("--calibrate-only", action="store_true", help="calibrate the reader file --out as it is, without training")


__all__ = ["CACHE", "TrainSettings", "add_arguments"]
