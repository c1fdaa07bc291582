"""Text checks left to the ranking (retrieval/checks.py), the sampled top-k selection and the
re-rank's window: the shortcuts that keep a million-post archive fast must give the pages
the plain way gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import write_post
from hypothesis import given, settings
from hypothesis import strategies as st

import retrieval.checks
import retrieval.search
from bot.render import HTML, render_listing
from bot.service import Listing
from retrieval import Archive
from retrieval.checks import round_estimate
from retrieval.search import Ranking, top_indices

PHRASE_POSTS = 30  # posts with "经济发展" itself; as many more have both words apart


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Archive:
    content = tmp_path_factory.mktemp("checks")
    for i in range(3 * PHRASE_POSTS):
        body = ["推动经济发展。" * (1 + i % 4), "发展农村经济，保护环境。" * (1 + i % 5), "保护生态环境。"][i % 3]
        write_post(content, f"p{i:03d}.md", f"第{i}期", body, date=f"2020-{1 + i % 12:02d}-{1 + i % 28:02d} 10:00:00")
    return Archive.open(content, tmp_path_factory.mktemp("checks-index"), settle_seconds=0)


def pages(archive: Archive, query: str, limit: int = 4) -> tuple[list[str], list[tuple[int, bool, bool]]]:
    """Every page's ids, and each page's (total, total_exact, has_next)."""
    ids, seen, offset = [], [], 0
    while True:
        page = archive.search(query, limit=limit, offset=offset)
        ids += [h.post.id for h in page.hits]
        seen.append((page.total, page.total_exact, page.has_next))
        if not page.has_next:
            return ids, seen
        offset += limit


@pytest.mark.parametrize("query, expected", [
    ('"经济发展"', PHRASE_POSTS),
    ("经济 -经济发展", PHRASE_POSTS),
    ("-经济发展 since:2020-01-01", 2 * PHRASE_POSTS),
])
def test_checks_left_to_the_ranking_give_the_same_pages(archive: Archive, monkeypatch, query: str, expected: int):
    exact_ids, exact = pages(archive, query)
    assert len(exact_ids) == expected and exact[0] == (expected, True, True)
    monkeypatch.setattr(retrieval.checks, "EXACT_CHECKS", 5)  # every candidate is checked lazily
    lazy_ids, lazy = pages(archive, query)
    assert lazy_ids == exact_ids
    assert lazy == exact  # a "sample" as large as the candidates counts them all: exact


def test_an_estimate_is_an_estimate_and_the_page_says_so(archive: Archive, monkeypatch):
    monkeypatch.setattr(retrieval.checks, "EXACT_CHECKS", 5)
    monkeypatch.setattr(retrieval.checks, "ESTIMATE_SAMPLE", 12)  # of the 60 posts with both words
    first, second, last = (archive.search('"经济发展"', limit=4, offset=offset) for offset in (0, 4, 28))
    assert not first.total_exact and first.has_next and 5 <= first.total <= 2 * PHRASE_POSTS
    assert second.total == first.total and not second.total_exact  # every page states the same
    assert [h.post.id for h in last.hits] == [h.post.id for h in archive.search('"经济发展"', limit=32).hits][28:]
    text = render_listing(HTML, Listing("search", '"经济发展"', first), "zh").text
    assert f"约 {first.total} 条结果" in text and "共" not in text.splitlines()[0]


def test_estimates_keep_three_significant_figures():
    assert [round_estimate(v) for v in (0, 7.4, 999.5, 12_345.6, 77_649, 1_234_567)] == \
           [0, 7, 1000, 12_300, 77_600, 1_230_000]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=300), st.integers(1, 300), st.integers(1, 8))
def test_sampled_top_k_is_the_full_sort(values: list[int], k: int, sample: int):
    """Ties everywhere (seven distinct scores), tie keys from a second column, samples of every
    size: the first k rows are those of a full lexicographic sort."""
    first = np.array(values, np.float64)
    second = np.array([(v * 7919) % 5 for v in range(len(values))], np.float64)
    k = min(k, len(values))
    expected = np.lexsort([np.arange(len(values)), -second, -first])[:k]
    original = retrieval.search.KTH_SAMPLE
    try:
        retrieval.search.KTH_SAMPLE = sample
        got = top_indices(first, k, lambda rows: [second[rows]])
    finally:
        retrieval.search.KTH_SAMPLE = original
    assert got.tolist() == expected.tolist()


def test_the_phrase_bonus_looks_no_further_than_its_window(tmp_path: Path):
    """Forty posts with both words twice, apart, outscore one with them once, together, until
    a large bonus lifts that one; a window that ends before it leaves it where it was."""
    for i in range(40):
        write_post(tmp_path / "c", f"apart{i}.md", f"第{i}期", "发展农村经济，保护环境。" * 2 + "植树。" * (i % 3))
    write_post(tmp_path / "c", "together.md", "合订本", "推动经济发展。" + "植树。" * 3)
    archive = Archive.open(tmp_path / "c", tmp_path / "i", settle_seconds=0)

    def top(window: int, bonus: float = 10.0, limit: int = 10) -> list[str]:
        archive.ranking = Ranking(title_boost=0.0, phrase_bonus=bonus, rescore_window=window)
        return [h.post.title for h in archive.search("经济 发展", limit=limit).hits]

    assert top(1_000)[0] == "合订本"
    assert "合订本" not in top(30)
    assert top(1_000, bonus=0.0, limit=41)[30:].count("合订本") == 1  # where it is without the bonus
