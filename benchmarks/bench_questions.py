"""Questions in plain Chinese, answered as asked: before and after, in one run.

    python benchmarks/bench_questions.py [--per-kind 50] [--before COMMIT]

Generates natural-language questions from ``../shared/corpus/sample`` (1,000 news posts):

- ``dated``: a post's title words in a sentence with its date written inside
  (``2019年11月有哪些关于…的新闻？``, ``…2019年11月12日的报道``, ``二〇一九年十一月…``);
- ``relative``: the same with a relative date, asked on a day chosen so that it means the
  post's date (``昨天``, ``上个月``, ``上周``, ``最近三天``, ``去年11月``; the archive's clock is
  set to that day);
- ``traditional``: the title words in traditional characters (OpenCC ``s2t``);
- ``newest``: ``最新的X新闻`` for a word X found in several posts.

"Answered as asked": dated and relative — the post is in the top 10 and every result lies in
the dates asked for; traditional — the post is in the top 10; newest — the first result is the
newest post containing X. Then the CMRC 2018 trial set (1,002 questions): MRR@10 of the
relevant post, and the share of questions whose gold answer is in the reply's answer line
(before: the top result's summary, the reply's first text).

Each side runs in its own process: "before" on a checkout of ``--before`` (default: the
commit before question reading came in), "after" on this working tree. Not part of the tests.
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import CMRC, REPO, SHARED  # noqa: E402

SAMPLE = SHARED / "sample"
BEFORE = "60b9c17"  # the last commit before questions were read as questions
TZ = ZoneInfo("Asia/Shanghai")
K = 10
CN = "〇一二三四五六七八九"


def cn_year(year: int) -> str:
    return "".join(CN[int(d)] for d in str(year))


def cn_small(n: int) -> str:
    return ("十" if n == 10 else f"十{CN[n - 10]}" if n > 10 else CN[n]) if n < 20 else f"{CN[n // 10]}十{CN[n % 10] if n % 10 else ''}"


def month_span(day: date) -> tuple[date, date]:
    first = day.replace(day=1)
    return first, (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)


# ---- making the questions (no retrieval code: the same set for both sides) ------------------------
def make_questions(per_kind: int, seed: int = 11) -> list[dict]:
    import frontmatter
    import jieba
    import jieba.analyse
    import opencc

    jieba.setLogLevel(logging.WARNING)
    s2t = opencc.OpenCC("s2t").convert
    posts = []
    for path in sorted(SAMPLE.glob("*.md")):
        meta = frontmatter.load(path)
        when = meta.get("date")
        if not isinstance(when, datetime) or not meta.get("urlname"):
            continue
        title = str(meta.get("title", "")).split("->", 1)[-1].split(" | ")[0]
        words = [w for w in jieba.analyse.extract_tags(title, topK=3) if len(w) >= 2]
        if len(words) >= 2:
            posts.append({"id": str(meta["urlname"]), "day": when.date().isoformat(), "title": title,
                          "words": words, "text": title + meta.content, "tags": list(meta.get("tags") or [])})
    rng = random.Random(seed)
    chosen = rng.sample(posts, min(len(posts), per_kind * 3))
    out: list[dict] = []
    dated = ["{y}年{m}月有哪些关于{kw}的新闻？", "{kw}{y}年{m}月{d}日的报道", "请问{y}年{m}月{d}号{kw}有什么消息",
             "{cy}年{cm}月关于{kw}的文章"]
    for i, p in enumerate(chosen[:per_kind]):
        day = date.fromisoformat(p["day"])
        kw = "".join(p["words"][:2])
        template = dated[i % len(dated)]
        text = template.format(y=day.year, m=day.month, d=day.day, cy=cn_year(day.year), cm=cn_small(day.month), kw=kw)
        first, last = (day, day) if "{d}" in template else month_span(day)
        out.append({"kind": "dated", "q": text, "id": p["id"], "span": [first.isoformat(), last.isoformat()]})
    for i, p in enumerate(chosen[per_kind : 2 * per_kind]):
        day = date.fromisoformat(p["day"])
        kw = "".join(p["words"][:2])
        form = i % 5
        if form == 0:
            today, text, span = day + timedelta(days=1), f"昨天{kw}的新闻", (day, day)
        elif form == 1:
            following = month_span(day)[1] + timedelta(days=10)
            today, text, span = following, f"上个月关于{kw}的报道", month_span(day)
        elif form == 2:
            today = day + timedelta(days=7)
            monday = day - timedelta(days=day.weekday())
            text, span = f"上周{kw}有什么新闻", (monday, monday + timedelta(days=6))
        elif form == 3:
            today, text, span = day + timedelta(days=1), f"最近三天{kw}的消息", (day - timedelta(days=1), day + timedelta(days=1))
        else:
            today = date(day.year + 1, 6, 15)
            text, span = f"去年{day.month}月{kw}", month_span(day)
        out.append({"kind": "relative", "q": text, "id": p["id"], "today": today.isoformat(),
                    "span": [span[0].isoformat(), span[1].isoformat()]})
    for p in chosen[2 * per_kind : 3 * per_kind]:
        out.append({"kind": "traditional", "q": s2t(" ".join(p["words"])), "id": p["id"]})
    tags: dict[str, list[dict]] = {}
    for p in posts:
        for tag in p["tags"]:
            if isinstance(tag, str) and 2 <= len(tag) <= 6:
                tags.setdefault(tag, []).append(p)
    common = sorted((t for t, ps in tags.items() if len(ps) >= 3), key=lambda t: (-len(tags[t]), t))
    for tag in rng.sample(common, min(per_kind, len(common))):
        holders = [p for p in posts if tag in p["text"]]
        newest = max(holders, key=lambda p: (p["day"], p["id"]))
        out.append({"kind": "newest", "q": f"最新的{tag}新闻", "id": newest["id"], "day": newest["day"]})
    return out


# ---- one side --------------------------------------------------------------------------------
def run_side(questions_file: Path) -> dict:
    from retrieval import Archive

    logging.basicConfig(level=logging.ERROR)
    questions = json.loads(questions_file.read_text(encoding="utf-8"))
    has_clock = "clock" in inspect.signature(Archive.open).parameters
    archive = Archive.open(SAMPLE, None, settle_seconds=0)
    results: dict[str, list[bool]] = {}
    parse_ms: list[float] = []
    for q in questions:
        if has_clock:
            today = date.fromisoformat(q.get("today", "2026-11-25"))
            archive.clock = lambda today=today: datetime(today.year, today.month, today.day, 12, tzinfo=TZ)
        started = time.perf_counter()
        try:
            archive.parse(q["q"])
            parse_ms.append((time.perf_counter() - started) * 1000)
            page = archive.search(q["q"], limit=K)
        except Exception:  # noqa: BLE001 (a side that cannot read the question does not answer it)
            results.setdefault(q["kind"], []).append(False)
            continue
        hits = [h.post for h in page.hits]
        ids = [p.id for p in hits]
        if q["kind"] in ("dated", "relative"):
            first, last = (date.fromisoformat(d) for d in q["span"])
            within = all(p.date is not None and first <= p.date.astimezone(TZ).date() <= last for p in hits)
            ok = q["id"] in ids and within
        elif q["kind"] == "traditional":
            ok = q["id"] in ids
        else:
            ok = bool(ids) and (ids[0] == q["id"] or hits[0].date.astimezone(TZ).date().isoformat() == q["day"] and q["id"] in ids)
        results.setdefault(q["kind"], []).append(ok)
    out = {"kinds": {k: [sum(v), len(v)] for k, v in results.items()}, "parse_ms": statistics.median(parse_ms)}
    if CMRC.is_dir():
        out["cmrc"] = cmrc(Archive)
    return out


def cmrc(archive_class) -> dict:
    archive = archive_class.open(CMRC / "posts", None, settle_seconds=0)
    rows = [line.split("\t") for line in (CMRC / "answers.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    rr, held, search_ms = [], [], []
    for question, pid, answers in rows:
        started = time.perf_counter()
        page = archive.search(question, limit=K)
        search_ms.append((time.perf_counter() - started) * 1000)
        ids = [h.post.id for h in page.hits]
        rr.append(1 / (ids.index(pid) + 1) if pid in ids else 0.0)
        answer = getattr(page, "answer", None)
        shown = str(answer.text) if answer is not None else (str(page.hits[0].summary) if page.hits else "")
        held.append(any(a.strip() and a.strip() in shown for a in answers.split(" | ")))
    return {"mrr": statistics.mean(rr), "answer_share": statistics.mean(held), "questions": len(rows),
            "search_ms": statistics.median(search_ms)}


# ---- both sides, one table -----------------------------------------------------------------------
def side(repo: Path, questions: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(repo)}
    done = subprocess.run([sys.executable, __file__, "--side", str(questions)], env=env, cwd=repo,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-kind", type=int, default=50)
    parser.add_argument("--before", default=BEFORE, help="the commit to compare with")
    parser.add_argument("--side", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        print(json.dumps(run_side(args.side)))
        return
    if not SAMPLE.is_dir():
        raise SystemExit(f"{SAMPLE} not found (see ../shared/README.md)")
    with tempfile.TemporaryDirectory() as tmp:
        questions = Path(tmp) / "questions.json"
        made = make_questions(args.per_kind)
        questions.write_text(json.dumps(made, ensure_ascii=False), encoding="utf-8")
        old = Path(tmp) / "before"
        subprocess.run(["git", "worktree", "add", "--detach", str(old), args.before], cwd=REPO, check=True,
                       capture_output=True)
        try:
            before, after = side(old, questions), side(REPO, questions)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=REPO, capture_output=True)
    print(f"{len(made)} questions from {SAMPLE} ({args.per_kind} a kind); before = {args.before}, after = this tree\n")
    print("| kind | before | after |\n|---|---:|---:|")
    total = [0, 0, 0]
    for kind in ("dated", "relative", "traditional", "newest"):
        b, a = before["kinds"].get(kind, [0, 0]), after["kinds"].get(kind, [0, 0])
        total = [total[0] + b[0], total[1] + a[0], total[2] + a[1]]
        print(f"| {kind} | {b[0]}/{b[1]} ({b[0] / max(b[1], 1):.0%}) | {a[0]}/{a[1]} ({a[0] / max(a[1], 1):.0%}) |")
    print(f"| all | {total[0]}/{total[2]} ({total[0] / max(total[2], 1):.0%}) | {total[1]}/{total[2]} ({total[1] / max(total[2], 1):.0%}) |")
    print(f"| query parsing, median ms | {before['parse_ms']:.3f} | {after['parse_ms']:.3f} |")
    if "cmrc" in after:
        b, a = before["cmrc"], after["cmrc"]
        print(f"\nCMRC 2018 trial, {a['questions']} questions\n")
        print("| measure | before | after |\n|---|---:|---:|")
        print(f"| MRR@10 | {b['mrr']:.4f} | {a['mrr']:.4f} |")
        print(f"| gold answer in the reply's answer line (before: top summary) | {b['answer_share']:.1%} | {a['answer_share']:.1%} |")
        print(f"| search, median ms | {b['search_ms']:.2f} | {a['search_ms']:.2f} |")


if __name__ == "__main__":
    main()
