"""How each cost grows with the archive: one table over archive sizes, with a log–log slope.

    python benchmarks/bench_scale.py [--sizes 10000,50000,200000] [--queries 200]

Archives are made from ``../shared/corpus/xwlb-posts.tar.gz`` (74,756 posts) and cached under
``~/.cache/archive-bot-bench/scale-N``: up to the corpus size a sample of its posts; beyond,
new posts recombined from the paragraphs of two posts (the first half of one's, the second
half of the other's, so that posts keep the corpus's sizes: 1.4 KB of body text on average, a
million posts about 1.4 GB), with fresh ids and a made-up name of two or three characters
each, so that the vocabulary grows as a real archive's does. Each measure runs in a fresh
process (build, open, memory); at sizes rank-bm25 can hold (≤ 50,000) the public API's plain
scoring is compared with rank-bm25's ``get_scores`` on the same tokens. A slope of 1 means a
cost grows in proportion to the archive; 0 means flat.
Before each build, the files of one directory in 100 are read one by one: times the number of
posts, that is what reading the files alone costs in the page cache's present state (a
cold cache, after a reboot or on a small machine after other work, makes it most of a build);
the build's CPU time is split between the worker processes and the main one. The searches go
through the fixed queries and round again: the first pass, right after the full scan, may
find the index's pages evicted (on a small machine the scan's inodes take their place).
The 1,000,000-post run (``--sizes 1000000``) takes about a quarter of an hour (most of it the
build), and making its archive once another seven minutes. Not part of the tests.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import CACHE, DEFAULT_TARBALL, REPO, post_files, source_dir, with_fresh_id  # noqa: E402

QUERIES = Path(__file__).with_name("queries.txt")
REFERENCE_UP_TO = 50_000
CORPUS_POSTS = 74_756
NAME_CHARS = "安白陈丁方高韩江孔李马潘秦石唐王谢杨张赵周朱敏华军伟芳娜静丽强磊洋勇艳杰涛明超秀霞平刚桂英"


#: How recombined posts are made; an archive cached by another recipe is made again. (Recipe
#: 1 joined the first paragraphs of two posts: 0.7 KB of text a post, half the corpus's.)
RECIPE = "2"


def recombined(first: str, second: str, name: str) -> str:
    """A post with ``first``'s front matter and the first half of its paragraphs, then the
    second half of ``second``'s paragraphs, ``name`` speaking at both ends."""
    head, _, body = first.partition("\n---\n")
    ours, theirs = body.strip("\n").split("\n\n"), second.partition("\n---\n")[2].strip("\n").split("\n\n")
    paragraphs = ours[: max(1, len(ours) // 2)] + theirs[len(theirs) // 2 :]
    return f"{head}\n---\n{name}表示，" + "\n\n".join(paragraphs) + f"\n\n{name}说。\n"


def make_archive(size: int) -> Path:
    """``size`` posts (see the module docstring), cached."""
    target = CACHE / f"scale-{size}"
    marker = target / ".complete"
    if marker.exists() and (size <= CORPUS_POSTS or marker.read_text().strip() == RECIPE):
        return target
    files = post_files(source_dir(DEFAULT_TARBALL))
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    rng = random.Random(size)
    originals = rng.sample(files, min(size, len(files)))
    for i, path in enumerate(originals):
        dest = target / f"{i // 1000:04d}" / path.name
        dest.parent.mkdir(exist_ok=True)
        os.link(path, dest)
    for k in range(size - len(originals)):
        first, second = files[k % len(files)], files[(k * 7919 + 13) % len(files)]
        name = "".join(rng.choice(NAME_CHARS) for _ in range(rng.choice((2, 3))))
        text = recombined(first.read_text(encoding="utf-8"), second.read_text(encoding="utf-8"), name)
        text = with_fresh_id(text, f"s{k}")
        dest = target / f"r{k // 1000:05d}" / f"r{k}.md"
        dest.parent.mkdir(exist_ok=True)
        dest.write_text(text, encoding="utf-8")
    marker.write_text(RECIPE)
    return target


MEASURE = textwrap.dedent("""
    import json, os, statistics, sys, time
    from pathlib import Path
    from retrieval import Archive, NO_RERANK
    content, index, what = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    queries = [l.strip() for l in Path(sys.argv[4]).read_text("utf-8").splitlines() if l.strip() and not l.startswith("#")]
    count = int(sys.argv[5])

    def status(field):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        return 0

    def rss_anon():
        return status("RssAnon")

    def descendants():  # the build's zygote and workers: children, and their children
        parents = {}
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                parents[pid] = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
            except OSError:
                pass
        found, frontier = [], [str(os.getpid())]
        while frontier:
            frontier = [pid for pid, parent in parents.items() if parent in frontier]
            found += frontier
        return found

    def workers_anon():  # the build's zygote and workers: their proportional share (they share its pages)
        total = 0
        for pid in descendants():
            try:
                total += next((int(l.split()[1]) * 1024 for l in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
                               if l.startswith("Pss_Anon:")), 0)
            except OSError:
                pass
        return total

    def tree_anon():  # private memory of this process and its descendants
        return rss_anon() + workers_anon()

    peak = [0]
    def sample():  # this process 4 times a second; the workers, whose memory barely moves, every 2 s
        # (reading smaps_rollup walks a process's page tables: five times a second it took about a
        # tenth of a core from a 200,000-post build)
        workers, tick = 0, 0
        while True:
            if tick % 8 == 0:
                workers = workers_anon()
            peak[0] = max(peak[0], rss_anon() + workers)
            tick += 1
            time.sleep(0.25)
    if what == "build":
        import threading
        threading.Thread(target=sample, daemon=True).start()

    out = {}
    if what == "build":  # the disk's part: read the files of one directory in 100, one by one
        sample = sorted(p for p in content.iterdir() if p.is_dir())[::100]
        files = [f for d in sample for f in sorted(d.iterdir())]
        t = time.perf_counter()
        for f in files:
            f.read_bytes()
        out["read_file_s"] = (time.perf_counter() - t) / max(1, len(files))
    def machine():  # (all, idle, waiting on the disk) jiffies of every core, from /proc/stat
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\\n", 1)[0].split()[1:]]
        return sum(ticks), ticks[3], ticks[4]

    ticks, started, cpu = machine(), time.perf_counter(), os.times()
    archive = Archive.open(content, index, rebuild=what == "build", settle_seconds=0, sync=False)
    out["seconds"] = time.perf_counter() - started
    done = os.times()
    out["cpu_parent"] = done.user + done.system - cpu.user - cpu.system
    out["cpu_workers"] = done.children_user + done.children_system - cpu.children_user - cpu.children_system
    spent = [b - a for a, b in zip(ticks, machine())]
    out["busy"], out["iowait"] = 1 - (spent[1] + spent[2]) / max(1, spent[0]), spent[2] / max(1, spent[0])
    out["peak_rss"] = status("VmHWM")  # the parent's high-water mark, memory-mapped index pages included
    out["peak_anon"] = max(peak[0], tree_anon())  # private memory, workers included, sampled every 0.25 s
    if what == "open":
        out["rss_open"] = rss_anon()
        t = time.perf_counter(); archive.refresh(); out["sync_s"] = time.perf_counter() - t
        times = []
        for i in range(count):
            q = queries[i % len(queries)]
            t = time.perf_counter(); archive.search(q); times.append((time.perf_counter() - t) * 1000)
        first, later = sorted(times[:len(queries)]), sorted(times[len(queries):])
        times.sort()
        out["p50"], out["p95"] = times[len(times) // 2], times[int(len(times) * 0.95)]
        out["p50_first"] = first[len(first) // 2]
        out["p50_later"] = later[len(later) // 2] if later else None
        out["rss_queries"] = rss_anon()
        archive.ranking = NO_RERANK
        plain = []
        for q in queries:
            t = time.perf_counter(); archive.search(q, summary_chars=0); plain.append((time.perf_counter() - t) * 1000)
        out["api_p50"] = statistics.median(plain)
        extra = content / "zz-scale-added"
        extra.mkdir(exist_ok=True)
        (extra / "one.md").write_text("---\\ntitle: 新增的一篇\\nurlname: scale-added-one\\n---\\n新增内容。\\n", "utf-8")
        t = time.perf_counter(); archive.refresh(full=False); out["refresh_ms"] = (time.perf_counter() - t) * 1000
        (extra / "one.md").unlink(); extra.rmdir(); archive.refresh()
        out["body_mb"] = sum(len(archive.get(p).body.encode()) for p in archive.post_ids()) / 1e6
    print(json.dumps(out))
""")

REFERENCE = textwrap.dedent("""
    import json, statistics, sys, time
    from pathlib import Path
    import numpy as np
    from rank_bm25 import BM25Okapi
    from retrieval import Archive, NO_RERANK
    archive = Archive.open(sys.argv[1], sys.argv[2], ranking=NO_RERANK, access="read")
    queries = [l.strip() for l in Path(sys.argv[3]).read_text("utf-8").splitlines() if l.strip() and not l.startswith("#")]
    ids = archive.post_ids()
    bm25 = BM25Okapi([archive.doc_tokens(archive.get(p)) for p in ids])
    times = []
    for q in queries:
        tokens = archive.query_tokens(archive.parse(q))
        t = time.perf_counter(); scores = bm25.get_scores(tokens); np.argpartition(-scores, 10)[:10]
        times.append((time.perf_counter() - t) * 1000)
    print(json.dumps({"p50": statistics.median(times)}))
""")


def run(script: str, *args: object) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True, env=env,
                          cwd=REPO)
    if done.returncode:
        how = f"was killed by signal {-done.returncode}" if done.returncode < 0 else f"exited with {done.returncode}"
        hint = " (out of memory?)" if done.returncode == -signal.SIGKILL else ""
        raise SystemExit(f"measuring {args[2] if len(args) > 2 else ''} of {args[0]} {how}{hint}\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def measure(size: int, queries: int) -> dict:
    content = make_archive(size)
    index = CACHE / f"scale-index-{size}"
    build = run(MEASURE, content, index, "build", QUERIES, queries)
    opened = [run(MEASURE, content, index, "open", QUERIES, queries) for _ in range(3)]
    best = sorted(opened, key=lambda o: o["seconds"])[1]
    row = {"posts": size, "build_s": build["seconds"], "build_peak_mb": build["peak_rss"] / 1e6,
           "read_s": build["read_file_s"] * size, "cpu_workers_us": build["cpu_workers"] / size * 1e6,
           "cpu_parent_us": build["cpu_parent"] / size * 1e6, "busy": build["busy"], "iowait": build["iowait"],
           "build_anon_mb": build["peak_anon"] / 1e6, "body_mb": best["body_mb"],
           "disk_mb": dir_size(index) / 1e6, "open_s": best["seconds"], "sync_s": best["sync_s"],
           "rss_open_mb": best["rss_open"] / 1e6,
           "rss_mb": best["rss_queries"] / 1e6, "p50": best["p50"], "p95": best["p95"], "api_p50": best["api_p50"],
           "p50_first": best["p50_first"],
           "refresh_ms": best["refresh_ms"]}
    if best["p50_later"] is not None:
        row["p50_later"] = best["p50_later"]
    if size <= REFERENCE_UP_TO:
        row["bm25_p50"] = run(REFERENCE, content, index, QUERIES)["p50"]
    return row


def slope(rows: list[dict], key: str) -> str:
    a, b = rows[0], rows[-1]
    if len(rows) < 2 or a[key] <= 0 or b[key] <= 0:
        return "-"
    return f"{math.log(b[key] / a[key]) / math.log(b['posts'] / a['posts']):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,50000,200000")
    parser.add_argument("--queries", type=int, default=200, help="searches after each open (memory, latency)")
    args = parser.parse_args()
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        print(f"measuring {size} posts ...", file=sys.stderr, flush=True)
        rows.append(measure(size, args.queries))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)  # (kept if a larger size fails)
    measures = [
        ("full build", "build_s", "{:.1f} s"), ("build throughput", "mbps", "{:.2f} MB/s"),
        ("reading every post file once, serially (from 1 directory in 100)", "read_s", "{:.1f} s"),
        ("build CPU per post: workers", "cpu_workers_us", "{:.0f} µs"),
        ("build CPU per post: main process", "cpu_parent_us", "{:.0f} µs"),
        ("the machine's cores busy during the build", "busy", "{:.0%}"),
        ("the machine's cores waiting on the disk during the build (iowait)", "iowait", "{:.0%}"),
        ("peak private memory of the build (RssAnon; workers' Pss_Anon)", "build_anon_mb", "{:.0f} MB"),
        ("peak resident memory of the build (VmHWM, mapped files included)", "build_peak_mb", "{:.0f} MB"),
        ("index on disk", "disk_mb", "{:.0f} MB"), ("index / body text", "ratio", "{:.2f}×"),
        ("open (fresh process)", "open_s", "{:.2f} s"), ("first sync with the files (full scan)", "sync_s", "{:.2f} s"),
        ("RssAnon after open", "rss_open_mb", "{:.0f} MB"),
        ("RssAnon after open + queries", "rss_mb", "{:.0f} MB"), ("search p50, full path", "p50", "{:.2f} ms"),
        ("search p95, full path", "p95", "{:.2f} ms"),
        ("search p50, first pass over the queries (right after the full scan)", "p50_first", "{:.2f} ms"),
        ("search p50, the queries again", "p50_later", "{:.2f} ms"), ("public API, NO_RERANK, no summaries, p50", "api_p50", "{:.3f} ms"),
        ("rank-bm25 get_scores + top 10, p50", "bm25_p50", "{:.1f} ms"), ("rank-bm25 / public API", "speedup", "{:.0f}×"),
        ("refresh after adding 1 post (quick scan)", "refresh_ms", "{:.0f} ms"),
    ]
    for row in rows:
        row["mbps"] = row["body_mb"] / row["build_s"]
        row["ratio"] = row["disk_mb"] / row["body_mb"]
        if "bm25_p50" in row:
            row["speedup"] = row["bm25_p50"] / row["api_p50"]
    print("| measure | " + " | ".join(f"{r['posts']:,} posts ({r['body_mb']:.0f} MB)" for r in rows) + " | log–log slope |")
    print("|---|" + "---:|" * (len(rows) + 1))
    for label, key, fmt in measures:
        cells = [fmt.format(r[key]) if key in r else "-" for r in rows]
        with_key = [r for r in rows if key in r]
        print(f"| {label} | " + " | ".join(cells) + f" | {slope(with_key, key) if len(with_key) > 1 else '-'} |")


if __name__ == "__main__":
    main()
