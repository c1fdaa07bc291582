"""A build in worker processes, and one that packs its postings into many runs, make exactly
the index a single process makes in one piece: the same term numbers, postings and scores."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest

import retrieval.index
from retrieval import Archive
from retrieval.analyze import POOL_THRESHOLD

from conftest import write_post

WORDS = ["经济", "发展", "香港", "教育", "科技", "创新", "农业", "改革", "开放", "合作", "会议", "主席",
         "人民", "环境", "保护", "文化", "交流", "城市", "乡村", "医疗"]


@pytest.fixture
def many(tmp_path: Path) -> Path:
    """More posts than the worker pool's threshold, each with its own rare word."""
    rng = random.Random(7)
    root = tmp_path / "many"
    for i in range(POOL_THRESHOLD + 60):
        body = "，".join(rng.choice(WORDS) + rng.choice(WORDS) for _ in range(rng.randint(3, 30)))
        write_post(root, f"p{i:04d}.md", f"{rng.choice(WORDS)}新闻{i}", f"{body}。稀有词{i}号。",
                   date=f"2020-{i % 12 + 1:02d}-{i % 28 + 1:02d} 10:00:00", urlname=f"p{i}",
                   tags=[rng.choice(WORDS)])
    return root


def fingerprint(archive: Archive) -> tuple:
    index = archive.index
    main = index.main
    return ([index.vocab.string(t) for t in range(len(index.vocab))], main.ptr.tolist(), main.docs.tolist(),
            main.tfs.tolist(), main.flags().tolist(), index.doc_len.tolist(),
            [archive.docs.ids.string(d) for d in range(len(archive.docs))])


def test_workers_and_runs_build_the_same_index(many: Path, tmp_path: Path, monkeypatch):
    alone = Archive.open(many, tmp_path / "alone", workers=1, settle_seconds=0)
    pooled = Archive.open(many, tmp_path / "pooled", workers=2, settle_seconds=0)
    monkeypatch.setattr(retrieval.index, "RUN_POSTINGS", 50)  # a run every few posts
    packed = Archive.open(many, tmp_path / "packed", workers=2, settle_seconds=0)
    assert len(alone) == POOL_THRESHOLD + 60
    assert fingerprint(pooled) == fingerprint(alone)
    assert fingerprint(packed) == fingerprint(alone)
    for query in ("经济 发展", "稀有词17号", "香港"):
        assert np.array_equal(packed.index.score(alone.query_tokens(alone.parse(query))).scores,
                              alone.index.score(alone.query_tokens(alone.parse(query))).scores)
    reopened = Archive.open(many, tmp_path / "packed", settle_seconds=0)
    assert fingerprint(reopened) == fingerprint(alone)
