"""Benchmark corpora: unpacked once into a cache directory outside the repository."""

from __future__ import annotations

import os
import random
import re
import shutil
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "corpus"
DEFAULT_TARBALL = SHARED / "xwlb-posts.tar.gz"
CMRC = SHARED / "eval" / "cmrc2018-trial"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "archive-bot-bench"
_URLNAME = re.compile(r"^urlname:.*$", re.M)


def source_dir(corpus: Path) -> Path:
    """A directory of posts: ``corpus`` itself, or the tarball unpacked into the cache."""
    if corpus.is_dir():
        return corpus
    if not corpus.is_file():
        raise SystemExit(f"corpus {corpus} not found (see ../shared/corpus/SOURCE.md)")
    target = CACHE / corpus.name.removesuffix(".tar.gz")
    marker = target / ".unpacked"
    if not marker.exists():
        print(f"unpacking {corpus} into {target} (once) ...", flush=True)
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        with tarfile.open(corpus) as tar:
            tar.extractall(target, filter="data")
        marker.touch()
    return target


def post_files(root: Path) -> list[Path]:
    """Every post file under ``root``, in a stable order."""
    return sorted(p for p in root.rglob("*") if p.suffix in (".md", ".markdown") and p.is_file())


def with_fresh_id(text: str, suffix: str) -> str:
    """The same post under another id (its ``urlname`` gets ``suffix``)."""
    replaced, n = _URLNAME.subn(lambda m: f"{m.group(0).rstrip()}-{suffix}", text, count=1)
    return replaced if n else text.replace("---\n", f"---\nurlname: copy-{suffix}\n", 1)


def content_of_size(corpus: Path, docs: int, seed: int = 7) -> tuple[Path, str]:
    """A content directory of exactly ``docs`` posts drawn from ``corpus`` (hard links to the
    originals; copies with fresh ids when the corpus is smaller), cached; and a note saying how
    it was made."""
    source = source_dir(corpus)
    files = post_files(source)
    if not files:
        raise SystemExit(f"no posts under {source}")
    target = CACHE / f"content-{source.name}-{docs}"
    marker = target / ".complete"
    note = f"{docs} of the {len(files)} posts of {corpus.name}"
    if docs > len(files):
        note = f"{corpus.name} has {len(files)} posts: replicated with fresh ids to reach {docs}"
    if marker.exists():
        return target, note
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    chosen = random.Random(seed).sample(files, docs) if docs <= len(files) else files
    for i, path in enumerate(chosen):
        dest = target / f"{i // 1000:03d}" / path.name
        dest.parent.mkdir(exist_ok=True)
        os.link(path, dest)
    copy = 0
    while len(chosen) + copy < docs:
        path = files[copy % len(files)]
        dest = target / f"copies-{copy // 1000:03d}" / f"{copy}-{path.name}"
        dest.parent.mkdir(exist_ok=True)
        dest.write_text(with_fresh_id(path.read_text(encoding="utf-8"), f"r{copy}"), encoding="utf-8")
        copy += 1
    marker.touch()
    return target, note
