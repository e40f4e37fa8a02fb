"""bench/peer.py: ours and the LangChain peer judged by one hit definition, on a tiny SQuAD-format corpus."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("langchain_community")
pytest.importorskip("langchain_classic")
pytest.importorskip("langchain_huggingface")
pytest.importorskip("rank_bm25")

from bench import peer

PARAGRAPHS = [
    ("长沙天心经济开发区建成了8个数据中心，形成数字矩阵，服务业营收增速连续7年排名省级园区第一。",
     [("天心经开区建成了多少个数据中心？", "8个数据中心")]),
    ("舟山新建村打造了南洞艺谷景区，村里的民宿错落有致，远远看去像一个“合”字。",
     [("新建村打造了什么景区？", "南洞艺谷")]),
    ("福州市军门社区的老党员邱沛霖今年九十岁，每天早上在社区里义务巡逻。",
     [("军门社区的老党员叫什么名字？", "邱沛霖")]),
    ("北京前门的居民何立华那天正在包饺子，手上全是面粉，笑着和大家握手。",
     [("何立华握手时正在做什么？", "包饺子")]),
]


def squad(path, paragraphs):
    data = [{"paragraphs": [{"context": c, "qas": [
        {"id": f"q{i}-{j}", "question": q, "answers": [{"text": a, "answer_start": c.find(a)}]}
        for j, (q, a) in enumerate(qas)]} for i, (c, qas) in enumerate(paragraphs)]}]
    path.write_text(json.dumps({"data": data}, ensure_ascii=False), encoding="utf-8")
    return path


def test_hit_is_computed_identically_for_ours_and_the_peer(tmp_path):
    folder, ds = peer.cmrc_corpus(tmp_path / "corpus", None, None, path=squad(tmp_path / "tiny.json", PARAGRAPHS))
    assert sorted(f.name for f in folder.iterdir()) == [f"p0000{i}.txt" for i in range(4)]
    results, systems = {}, {}
    for system in (peer.Ours(), peer.make_system("peer")):
        systems[system.name] = system
        results[system.name] = r = peer.measure(system, folder, tmp_path / system.name, ds.rows, warmup=1, min_timed=4)
        assert r["chunks"] >= 4 and r["chars"] == sum(len(c) for c, _ in PARAGRAPHS)
        assert r["disk_bytes_per_chunk"] > 0 and r["query_p95_ms"] > 0 and r["peak_rss_mib"] > 0
        # every answer is in one paragraph only, and the corpus is tiny: both find it first, by its doc id
        assert r["judged"] == 4 and r["hit@1"] == 1.0 and r["hit@5"] == 1.0 and r["doc hit@1"] == 1.0, r["ranks"]
    # the same questions, ranked the same way, in the same order
    assert [x[0] for x in results["ours"]["ranks"]] == [x[0] for x in results["peer"]["ranks"]]

    # and the judging itself: the peer's passages carry ours' doc ids, so one passage is judged alike
    row = ds.rows[2]
    theirs, ours = systems["peer"].search(row.question), systems["ours"].search(row.question)
    assert theirs[0][0] == ours[0][0] == "p00002.txt"
    assert peer.judge(row, theirs[:1]) == peer.judge(row, ours[:1]) == {"judgeable": True, "rank": 1, "doc_rank": 1}
    # a passage from the gold document that lacks the gold answer is not a hit (rag eval's "relevant")
    assert peer.judge(row, [("p00002.txt", "无关的文字")])["rank"] is None
    assert peer.judge(row, [("p00001.txt", PARAGRAPHS[2][0])]) == {"judgeable": True, "rank": None, "doc_rank": None}
    assert peer.hit_rates([{"has_gold_docs": True, **peer.judge(row, [("p00000.txt", "x"), ("p00002.txt", "邱沛霖")])}]) \
        == {"judged": 1, "hit@1": 0.0, "hit@5": 1.0, "doc hit@1": 0.0, "doc hit@5": 1.0}


def test_targets_pass_and_fail():
    ours = {"ingest_chars_per_s": 200.0, "query_p95_ms": 5.0, "hit@1": 0.8}
    assert [ok for _, ok in peer.targets(ours, {"ingest_chars_per_s": 100.0, "query_p95_ms": 10.0, "hit@1": 0.7})] \
        == [True, True, True]
    assert [ok for _, ok in peer.targets(ours, {"ingest_chars_per_s": 101.0, "query_p95_ms": 9.9, "hit@1": 0.8})] \
        == [False, False, False]
