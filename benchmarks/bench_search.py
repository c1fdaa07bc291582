"""Index build, open, incremental refresh and query latency, against rank-bm25 and bm25s.

    python benchmarks/bench_search.py [--corpus DIR|TARBALL] [--docs N]

Everything is measured in the same run on the same tokens; times are medians over repeated
runs. The build is timed with the C extension and without it (in a fresh process with
``ARCHIVE_BOT_PURE_PYTHON=1``). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import DEFAULT_TARBALL, REPO, content_of_size, post_files, with_fresh_id  # noqa: E402

from retrieval import Archive  # noqa: E402
from retrieval.search import NO_RERANK  # noqa: E402

QUERIES = Path(__file__).with_name("queries.txt")
K = 10
OPEN_SCRIPT = """
import json, sys, time, psutil
from retrieval import Archive
started = time.perf_counter()
archive = Archive.open(sys.argv[1], sys.argv[2])
seconds = time.perf_counter() - started
archive.search("经济 发展")
print(json.dumps({"seconds": seconds, "rss": psutil.Process().memory_info().rss, "posts": len(archive)}))
"""

PURE_BUILD_SCRIPT = """
import json, sys, time
from retrieval import Archive
from retrieval.native import native
assert native is None
started = time.perf_counter()
Archive.open(sys.argv[1], sys.argv[2], rebuild=True, settle_seconds=0)
print(json.dumps({"seconds": time.perf_counter() - started}))
"""


def load_queries() -> list[str]:
    lines = QUERIES.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def median_time(fn, repeats: int) -> float:
    """Median wall time of ``fn()`` in seconds."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# ---- index lifecycle ------------------------------------------------------------------------
def bench_build(content: Path, index_dir: Path, runs: int) -> tuple[Archive, float]:
    times, archive = [], None
    for i in range(runs):
        started = time.perf_counter()
        archive = Archive.open(content, index_dir, rebuild=True, settle_seconds=0)
        times.append(time.perf_counter() - started)
        print(f"  build {i + 1}/{runs}: {times[-1]:.1f} s", flush=True)
    return archive, statistics.median(times)


def bench_build_pure(content: Path, index_dir: Path, runs: int) -> float:
    """The same build with the C extension turned off (``ARCHIVE_BOT_PURE_PYTHON=1``), in a
    fresh process whose workers inherit the setting: median seconds."""
    env = dict(os.environ, ARCHIVE_BOT_PURE_PYTHON="1")
    seconds = []
    for i in range(runs):
        out = subprocess.run([sys.executable, "-c", PURE_BUILD_SCRIPT, str(content), str(index_dir)],
                             capture_output=True, text=True, check=True, cwd=REPO, env=env)
        seconds.append(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])
        print(f"  build without the C extension {i + 1}/{runs}: {seconds[-1]:.1f} s", flush=True)
    return statistics.median(seconds)


def bench_open(content: Path, index_dir: Path, runs: int) -> tuple[float, int]:
    """Open in fresh processes (cold interpreter, warm page cache): median seconds, max RSS."""
    seconds, rss = [], []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", OPEN_SCRIPT, str(content), str(index_dir)],
                             capture_output=True, text=True, check=True, cwd=REPO)
        data = json.loads(out.stdout.strip().splitlines()[-1])
        seconds.append(data["seconds"])
        rss.append(data["rss"])
    return statistics.median(seconds), max(rss)


def bench_add(archive: Archive, content: Path, donors: list[Path], count: int, runs: int, full: bool) -> float:
    """Median time of a refresh (quick or full scan) that picks up ``count`` new post files
    (removed again after)."""
    extra = content / "zz-bench-added"
    times = []
    try:
        for run in range(runs):
            extra.mkdir(exist_ok=True)
            for i in range(count):
                donor = donors[(run * count + i) % len(donors)]
                text = with_fresh_id(donor.read_text(encoding="utf-8"), f"added-{run}-{i}")
                (extra / f"{run}-{i}-{donor.name}").write_text(text, encoding="utf-8")
            started = time.perf_counter()
            result = archive.refresh(full=full)
            times.append(time.perf_counter() - started)
            assert len(result.added) == count, (len(result.added), result.skipped)
            shutil.rmtree(extra)
            archive.refresh()
    finally:
        shutil.rmtree(extra, ignore_errors=True)
    return statistics.median(times)


# ---- engines --------------------------------------------------------------------------------
class Reference:
    """rank-bm25 and bm25s over exactly the tokens our index holds, in post-id order."""

    def __init__(self, archive: Archive) -> None:
        from rank_bm25 import BM25Okapi

        self.ids = archive.post_ids()
        self.docs = np.array([archive.ids[pid] for pid in self.ids])  # our document number of each
        self.position = {pid: i for i, pid in enumerate(self.ids)}
        corpus = [archive.doc_tokens(archive.get(pid)) for pid in self.ids]  # type: ignore[arg-type]
        started = time.perf_counter()
        self.okapi = BM25Okapi(corpus)
        self.okapi_build = time.perf_counter() - started
        self.bm25s = self._bm25s(corpus)

    def _bm25s(self, corpus: list[list[str]]):
        import bm25s

        logging.getLogger("bm25s").setLevel(logging.WARNING)  # it sets DEBUG on import
        retriever = bm25s.BM25()
        started = time.perf_counter()
        retriever.index(corpus, show_progress=False)
        self.bm25s_build = time.perf_counter() - started
        return retriever

    def mask(self, ours: np.ndarray | None) -> np.ndarray | None:
        """Our per-document mask in this corpus's order."""
        return None if ours is None else ours[self.docs]

    def okapi_top(self, tokens: list[str], mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        scores = self.okapi.get_scores(tokens)
        if mask is not None:
            scores = np.where(mask, scores, -np.inf)
        top = np.argpartition(-scores, K)[:K] if scores.shape[0] > K else np.arange(scores.shape[0])
        top = top[np.argsort(-scores[top])]
        return top, scores

    def bm25s_top(self, tokens: list[str], mask: np.ndarray | None):
        weights = mask.astype(np.float32) if mask is not None else None
        return self.bm25s.retrieve([tokens], k=K, show_progress=False, n_threads=1, weight_mask=weights)


def ours_scores_only(archive: Archive, tokens: list[str], mask: np.ndarray | None) -> np.ndarray:
    """Our index without parsing, re-rank or summaries: postings → scores → top k."""
    hits = archive.index.score(tokens, titles=False)
    if mask is not None:
        hits = hits.where(mask[hits.docs])
    if hits.docs.shape[0] <= K:
        return hits.docs
    return hits.docs[np.argpartition(-hits.scores, K)[:K]]


def our_mask(archive: Archive, query) -> np.ndarray | None:
    return None if query.dates.unbounded else archive.docs.in_range(query.dates)


def agreement(archive: Archive, ref: Reference, queries: list[str]) -> tuple[int, int]:
    """Queries whose top 10 (re-rank off) equals rank-bm25's, ties at the cut-off allowed."""
    saved, archive.ranking = archive.ranking, NO_RERANK
    agree = 0
    try:
        for text in queries:
            query = archive.parse(text.replace('"', " "))
            tokens = archive.tokenizer.tokenize(query.ranked_text)
            ours = archive.search(query, limit=K)
            top, scores = ref.okapi_top(tokens, ref.mask(our_mask(archive, query)))
            theirs = sorted((float(scores[i]) for i in top if scores[i] > 0 and np.isfinite(scores[i])), reverse=True)
            mine = [h.score for h in ours.hits]
            if len(mine) != len(theirs) or not np.allclose(mine, theirs, rtol=0, atol=1e-9):
                print(f"  top-10 differs for {text!r}", flush=True)
                continue
            if all(abs(float(scores[ref.position[h.post.id]]) - h.score) <= 1e-9 for h in ours.hits):
                agree += 1
            else:
                print(f"  top-10 scores disagree for {text!r}", flush=True)
    finally:
        archive.ranking = saved
    return agree, len(queries)


def latencies(fn, items: list, repeats: int) -> np.ndarray:
    """Per item: the median over ``repeats`` of ``fn(item)``, in milliseconds."""
    out = []
    for item in items:
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            fn(item)
            times.append(time.perf_counter() - started)
        out.append(statistics.median(times) * 1000)
    return np.array(out)


# ---- report ---------------------------------------------------------------------------------
def row(name: str, value: str, target: str = "", ok: bool | None = None) -> str:
    mark = "" if ok is None else ("ok" if ok else "MISSED")
    return f"| {name:<34} | {value:>16} | {target:>12} | {mark:<6} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_TARBALL, help="posts directory or .tar.gz")
    parser.add_argument("--docs", type=int, default=50_000, help="number of posts (replicated if the corpus is smaller)")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per query for our engine")
    parser.add_argument("--ref-repeats", type=int, default=3, help="timed runs per query for rank-bm25 and bm25s")
    parser.add_argument("--build-runs", type=int, default=3)
    parser.add_argument("--open-runs", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    content, note = content_of_size(args.corpus, args.docs)
    queries = load_queries()
    print(f"corpus: {note}\ncontent: {content}\nqueries: {len(queries)} from {QUERIES.name}\n", flush=True)
    work = Path(tempfile.mkdtemp(prefix="archive-bench-"))
    try:
        index_dir = work / "index"
        pure_s = bench_build_pure(content, work / "index-pure", args.build_runs)
        archive, build_s = bench_build(content, index_dir, args.build_runs)
        body_mb = sum(len(archive.get(pid).body.encode("utf-8")) for pid in archive.post_ids()) / 1e6  # type: ignore[union-attr]
        index_mb = dir_size(index_dir) / 1e6
        open_s, rss = bench_open(content, index_dir, args.open_runs)
        donors = post_files(content)[:200]
        add1 = bench_add(archive, content, donors, 1, 7, full=False)
        add1_full = bench_add(archive, content, donors, 1, 7, full=True)
        add100 = bench_add(archive, content, donors, 100, 3, full=False)
        print("  building rank-bm25 and bm25s on the same tokens ...", flush=True)
        ref = Reference(archive)

        parsed = [archive.parse(q) for q in queries]
        tokens = [archive.tokenizer.tokenize(q.ranked_text) for q in parsed]
        own_masks = [our_mask(archive, q) for q in parsed]
        ref_masks = [ref.mask(m) for m in own_masks]
        idx = list(range(len(queries)))
        print("  timing queries ...", flush=True)
        full = latencies(lambda i: archive.search(queries[i], limit=K), idx, args.repeats)
        bare = latencies(lambda i: ours_scores_only(archive, tokens[i], own_masks[i]), idx, args.repeats)
        okapi = latencies(lambda i: ref.okapi_top(tokens[i], ref_masks[i]), idx, args.ref_repeats)
        b25s = latencies(lambda i: ref.bm25s_top(tokens[i], ref_masks[i]), idx, args.ref_repeats)
        agree, total = agreement(archive, ref, queries)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    n = len(archive)
    p50 = lambda a: float(np.percentile(a, 50))  # noqa: E731
    p95 = lambda a: float(np.percentile(a, 95))  # noqa: E731
    print(f"\n## archive-bot search benchmark: {n} posts, {body_mb:.1f} MB of body text ({note})\n")
    print(row("measure", "value", "target", None).replace("|      |", "| ok?  |"))
    print("|" + "-" * 36 + "|" + "-" * 18 + "|" + "-" * 14 + "|" + "-" * 8 + "|")
    print(row("full build (median)", f"{build_s:.1f} s"))
    print(row("build throughput", f"{body_mb / build_s:.2f} MB/s", ">= 2 MB/s", body_mb / build_s >= 2))
    print(row("full build without the C extension", f"{pure_s:.1f} s = {body_mb / pure_s:.2f} MB/s"))
    print(row("C extension's speed-up of the build", f"{pure_s / build_s:.2f}x"))
    print(row("index size on disk", f"{index_mb:.0f} MB"))
    print(row("open persisted index (median)", f"{open_s:.2f} s", "<= 2 s", open_s <= 2))
    print(row("resident memory after open", f"{rss / 2**20:.0f} MB", "<= 1024 MB", rss <= 2**30))
    print(row("refresh +1 post (quick scan)", f"{add1 * 1000:.0f} ms", "<= 200 ms", add1 <= 0.2))
    print(row("refresh +1 post (full scan)", f"{add1_full * 1000:.0f} ms"))
    print(row("refresh +100 posts (quick scan)", f"{add100 * 1000:.0f} ms"))
    print(row("rank-bm25 BM25Okapi build", f"{ref.okapi_build:.1f} s"))
    print(row("bm25s index build", f"{ref.bm25s_build:.1f} s"))
    print(row("top-10 agreement with rank-bm25", f"{agree}/{total}", "100%", agree == total))
    print(f"\nquery latency over {len(queries)} queries (per query: median of repeated runs), ms\n")
    print("| engine                              |   p50 |   p95 |  mean | rank-bm25 / this (p50) |")
    print("|-------------------------------------|------:|------:|------:|-----------------------:|")
    base = p50(okapi)
    for name, arr in (
        ("ours: parse + rank + summaries", full),
        ("ours: scores + top-10 only", bare),
        ("rank-bm25 get_scores + top-10", okapi),
        ("bm25s retrieve top-10", b25s),
    ):
        print(f"| {name:<35} | {p50(arr):5.2f} | {p95(arr):5.2f} | {arr.mean():5.2f} | {base / p50(arr):21.0f}x |")
    per_query = np.median(okapi / full)
    print(f"\nper-query speed-up of ours (with summaries) over rank-bm25: median {per_query:.0f}x, "
          f"min {np.min(okapi / full):.0f}x")
    targets = [
        ("p50 with summaries <= 5 ms", p50(full) <= 5),
        (">= 100x rank-bm25 (p50), same work: scores + top-10", base / p50(bare) >= 100),
        (">= 100x rank-bm25 (p50), with parsing, re-rank and summaries", base / p50(full) >= 100),
    ]
    for label, ok in targets:
        print(f"{label}: {'ok' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
