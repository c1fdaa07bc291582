"""Search quality: known-item search on the news corpus, and the relevance-judged CMRC 2018
trial set; ours (with the re-rank, over a grid of its two weights) against plain BM25Okapi.

    python benchmarks/bench_quality.py [--corpus DIR|TARBALL] [--docs N] [--sample N]

Known-item: for a fixed random sample of posts, a query of 2-4 salient words of the post's
title (jieba.analyse TF-IDF); the measure is where that post ranks. CMRC 2018: each question
is a query whose one relevant post is the paragraph it was written from. Queries are taken as
plain words (no query-language parsing: a question may contain "1903年"). Not part of the
test suite.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import CACHE, CMRC, DEFAULT_TARBALL, content_of_size  # noqa: E402

from retrieval import Archive, Query  # noqa: E402
from retrieval.search import Ranking  # noqa: E402

K = 10
TITLE_BOOSTS = (0.0, 0.25, 0.5, 1.0, 2.0)
PHRASE_BONUSES = (0.0, 0.25, 0.5, 1.0)
Judged = list[tuple[str, str]]  # (query, relevant post id)


def known_items(archive: Archive, sample: int, seed: int = 13) -> Judged:
    """Queries of 2-4 salient title words for a fixed random sample of posts."""
    import jieba
    import jieba.analyse

    jieba.setLogLevel(logging.WARNING)
    rng = random.Random(seed)
    ids = sorted(archive.post_ids())
    out: Judged = []
    for pid in rng.sample(ids, min(sample * 2, len(ids))):
        post = archive.get(pid)
        words = jieba.analyse.extract_tags(post.title, topK=4) if post else []  # type: ignore[union-attr]
        if len(words) >= 2:
            out.append((" ".join(words[: rng.choice((2, 3, 4))]), pid))
        if len(out) == sample:
            break
    return out


def cmrc_pairs() -> Judged:
    lines = (CMRC / "qrels.tsv").read_text(encoding="utf-8").splitlines()[1:]
    return [(q, pid) for q, pid in (line.split("\t") for line in lines if "\t" in line)]


def metrics(ranks: list[int | None]) -> tuple[float, float]:
    """MRR@10 and Recall@10 from the relevant post's 1-based rank (None: not in the top 10)."""
    rr = [1 / r if r is not None and r <= K else 0.0 for r in ranks]
    return float(np.mean(rr)), float(np.mean([r is not None and r <= K for r in ranks]))


def ours(archive: Archive, judged: Judged, ranking: Ranking) -> tuple[float, float]:
    archive.ranking = ranking
    ranks = []
    for text, pid in judged:
        hits = archive.search(Query(text, words=(text,)), limit=K).hits
        ranks.append(next((i for i, h in enumerate(hits, 1) if h.post.id == pid), None))
    return metrics(ranks)


def okapi(archive: Archive, judged: Judged) -> tuple[float, float]:
    """rank-bm25's BM25Okapi itself, over the same tokens."""
    from rank_bm25 import BM25Okapi

    ids = archive.post_ids()
    bm25 = BM25Okapi([archive.doc_tokens(archive.get(pid)) for pid in ids])  # type: ignore[arg-type]
    position = {pid: i for i, pid in enumerate(ids)}
    ranks = []
    for text, pid in judged:
        scores = bm25.get_scores(archive.tokenizer.tokenize(text))
        target = scores[position[pid]]
        ranks.append(int((scores > target).sum()) + 1 if target > 0 else None)
    return metrics(ranks)


def report(name: str, archive: Archive, judged: Judged, default: Ranking) -> dict[tuple[float, float], tuple[float, float]]:
    started = time.perf_counter()
    plain = okapi(archive, judged)
    print(f"\n### {name}: {len(judged)} queries, {len(archive)} posts\n")
    print("| ranking | MRR@10 | Recall@10 |\n|---|---:|---:|")
    print(f"| plain BM25Okapi (rank-bm25) | {plain[0]:.4f} | {plain[1]:.4f} |")
    grid = {}
    for tb in TITLE_BOOSTS:
        for pb in PHRASE_BONUSES:
            grid[(tb, pb)] = ours(archive, judged, replace(default, title_boost=tb, phrase_bonus=pb))
            mark = " (default)" if (tb, pb) == (default.title_boost, default.phrase_bonus) else ""
            print(f"| ours, title_boost={tb}, phrase_bonus={pb}{mark} | {grid[(tb, pb)][0]:.4f} | {grid[(tb, pb)][1]:.4f} |")
    chosen = grid[(default.title_boost, default.phrase_bonus)]
    verdict = "not worse" if chosen[0] >= plain[0] - 1e-12 else "WORSE"
    print(f"\ndefault re-rank vs plain BM25Okapi: MRR@10 {chosen[0] - plain[0]:+.4f}, "
          f"Recall@10 {chosen[1] - plain[1]:+.4f} ({verdict}); {time.perf_counter() - started:.0f} s")
    grid[("plain", "plain")] = plain  # type: ignore[index]
    return grid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_TARBALL)
    parser.add_argument("--docs", type=int, default=50_000)
    parser.add_argument("--sample", type=int, default=500, help="known-item queries")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    default = Ranking()
    content, note = content_of_size(args.corpus, args.docs)
    print(f"corpus: {note}")
    archive = Archive.open(content, CACHE / f"index-{content.name}")
    news = report("known-item search", archive, known_items(archive, args.sample), default)
    if CMRC.is_dir():
        cmrc = report("CMRC 2018 trial (relevance-judged)", Archive.open(CMRC / "posts"), cmrc_pairs(), default)
        best = max((k for k in news if k != ("plain", "plain")), key=lambda k: news[k][0] + cmrc[k][0])
        print(f"\nbest mean MRR@10 over both sets: title_boost={best[0]}, phrase_bonus={best[1]} "
              f"(known-item {news[best][0]:.4f}, CMRC {cmrc[best][0]:.4f})")


if __name__ == "__main__":
    main()
