"""Our BM25 equals rank-bm25's BM25Okapi on the same tokens, document by document."""

import random
from pathlib import Path

import pytest
from rank_bm25 import BM25Okapi

from retrieval import Archive, NO_RERANK

from conftest import write_post

WORDS = (
    "主题 教育 南开 大学 学生 老师 会议 经济 发展 改革 科技 创新 人工智能 天津 北京 上海 文化 历史 "
    "体育 比赛 冠军 医疗 健康 疫情 防控 环境 保护 农业 乡村 振兴 城市 交通 铁路 航天 卫星 能源 "
    "python ai data 2019 2020 100 "
    "臺灣 經濟 發展 學生 習近平 台湾 经济"  # traditional forms fold into the simplified ones
).split()


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    rnd = random.Random(20191113)
    root = tmp_path_factory.mktemp("generated")
    for i in range(240):
        # Zipf-like skew so some terms are in more than half the documents (negative idf floor).
        body_words = [WORDS[min(int(rnd.paretovariate(0.9)) - 1, len(WORDS) - 1)] for _ in range(rnd.randint(0, 60))]
        title = "".join(rnd.sample(WORDS[:20], rnd.randint(1, 3)))
        write_post(root, f"p{i:03d}.md", title, "，".join(body_words) + "。", urlname=f"p{i:03d}",
                   date=f"2019-{1 + i % 12:02d}-{1 + i % 28:02d} 08:00:00")
    return root


def test_scores_equal_rank_bm25(generated: Path):
    archive = Archive.open(generated, ranking=NO_RERANK, settle_seconds=0)
    ids = archive.post_ids()
    assert len(ids) == 240
    corpus = [archive.doc_tokens(archive.get(pid)) for pid in ids]
    reference = BM25Okapi(corpus)
    assert min(reference.idf.values()) > 0 and any(
        f > len(corpus) / 2 for f in (sum(1 for d in corpus if w in d) for w in set(WORDS))
    ), "the corpus should exercise the negative-idf floor"
    rnd = random.Random(7)
    queries = [rnd.sample(WORDS, rnd.randint(1, 4)) for _ in range(55)]
    queries += [["教育", "教育"], ["不存在的词"], ["主题", "未知词", "教育"], [], ["臺灣", "經濟"], ["主題", "教育"]]
    for words in queries:
        tokens = archive.tokenizer.tokenize(" ".join(words))
        ours = archive.bm25_scores(tokens)
        theirs = reference.get_scores(tokens)
        for pid, expected in zip(ids, theirs):
            assert ours[pid] == pytest.approx(expected, abs=1e-9), (words, pid)


def test_ranked_order_matches_rank_bm25_top10(generated: Path):
    archive = Archive.open(generated, ranking=NO_RERANK, settle_seconds=0)
    ids = archive.post_ids()
    reference = BM25Okapi([archive.doc_tokens(archive.get(pid)) for pid in ids])
    for words in (["主题", "教育"], ["人工智能", "天津"], ["python"], ["经济", "发展", "改革"]):
        tokens = archive.tokenizer.tokenize(" ".join(words))
        page = archive.search(" ".join(words), limit=10)
        theirs = reference.get_scores(tokens)
        expected = sorted((s for s in theirs if s != 0), reverse=True)[:10]
        assert [h.score for h in page.hits] == pytest.approx(expected, abs=1e-9)


def test_scores_stay_equal_after_incremental_changes(generated: Path, tmp_path: Path):
    import shutil

    content = tmp_path / "c"
    shutil.copytree(generated, content)
    archive = Archive.open(content, tmp_path / "index", ranking=NO_RERANK, settle_seconds=0)
    for i in range(5):
        (content / f"p{i:03d}.md").unlink()
    write_post(content, "new.md", "新的主题教育文章", "主题教育，主题教育，人工智能。", urlname="new")
    write_post(content, "p010.md", "改写的标题", "经济 发展。", urlname="p010")
    result = archive.refresh()
    assert len(result.added) == 1 and len(result.changed) == 1 and len(result.removed) == 5
    ids = archive.post_ids()
    reference = BM25Okapi([archive.doc_tokens(archive.get(pid)) for pid in ids])
    for words in (["主题", "教育"], ["经济"], ["人工智能", "python"]):
        tokens = archive.tokenizer.tokenize(" ".join(words))
        ours = archive.bm25_scores(tokens)
        for pid, expected in zip(ids, reference.get_scores(tokens)):
            assert ours[pid] == pytest.approx(expected, abs=1e-9)


def test_traditional_and_simplified_queries_score_alike(generated: Path):
    archive = Archive.open(generated, ranking=NO_RERANK, settle_seconds=0)
    for traditional, simplified in (("臺灣 經濟 發展", "台湾 经济 发展"), ("主題 學生", "主题 学生")):
        assert archive.tokenizer.tokenize(traditional) == archive.tokenizer.tokenize(simplified)
        assert archive.bm25_scores(archive.tokenizer.tokenize(traditional)) == \
            archive.bm25_scores(archive.tokenizer.tokenize(simplified))
