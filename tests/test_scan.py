"""The content scanner: quick scans re-list only changed directories; full scans see everything."""

from __future__ import annotations

import os
from pathlib import Path

from retrieval.scan import ContentScanner

OLD = 1_500_000_000  # 2017: far from "racy"


def age(root: Path) -> None:
    """Give every file and directory an old modification time."""
    for path in [*root.rglob("*"), root]:
        os.utime(path, (OLD, OLD))


def aged_post(root: Path, rel: str = "a/one.md") -> Path:
    """One post in an archive whose times are all old."""
    post = root / rel
    post.parent.mkdir(parents=True, exist_ok=True)
    post.write_text("x")
    age(root)
    return post


def test_quick_scans_see_additions_and_removals(tmp_path: Path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one.md").write_text("x")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "two.md").write_text("x")
    (tmp_path / "b" / "image.png").write_text("x")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "hidden.md").write_text("x")
    age(tmp_path)
    scanner = ContentScanner(tmp_path)
    assert set(scanner.scan()) == {"a/one.md", "b/two.md"}
    (tmp_path / "a" / "three.md").write_text("x")
    (tmp_path / "b" / "two.md").unlink()
    (tmp_path / "c" / "d").mkdir(parents=True)
    (tmp_path / "c" / "d" / "four.markdown").write_text("x")
    assert set(scanner.scan()) == {"a/one.md", "a/three.md", "c/d/four.markdown"}


def test_edits_in_place_wait_for_a_full_scan_unless_recent(tmp_path: Path):
    post = aged_post(tmp_path)
    scanner = ContentScanner(tmp_path)
    before = scanner.scan()["a/one.md"]
    post.write_text("longer")
    os.utime(post, (OLD + 10, OLD + 10))  # an old-looking edit: the directory did not change
    assert scanner.scan()["a/one.md"] == before  # quick: not seen
    assert scanner.scan(full=True)["a/one.md"].size == 6


def test_a_directory_with_a_file_being_written_is_listed_again(tmp_path: Path):
    aged_post(tmp_path)
    scanner = ContentScanner(tmp_path)
    scanner.scan()
    (tmp_path / "a" / "new.md").write_text("half")  # the directory changes now: racy
    assert scanner.scan()["a/new.md"].size == 4
    (tmp_path / "a" / "new.md").write_text("half written, then finished")
    assert scanner.scan()["a/new.md"].size == 27  # re-listed although the directory time is the same


def test_full_scans_come_by_themselves(tmp_path: Path):
    post = aged_post(tmp_path, "one.md")
    scanner = ContentScanner(tmp_path, full_every=0)
    scanner.scan()
    post.write_text("edited")
    os.utime(post, (OLD + 10, OLD + 10))
    assert scanner.scan()["one.md"].size == 6


def test_changes_name_only_the_files_of_directories_listed_again(tmp_path: Path):
    for rel in ("a/one.md", "b/two.md", "b/old.md", "c/d/deep.md"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    age(tmp_path)
    scanner = ContentScanner(tmp_path)
    first = scanner.changes()
    assert first.complete and set(first.files) == {"a/one.md", "b/two.md", "b/old.md", "c/d/deep.md"}
    (tmp_path / "b" / "three.md").write_text("x")
    (tmp_path / "b" / "old.md").unlink()
    for path in (tmp_path / "c" / "d" / "deep.md", tmp_path / "c" / "d"):
        path.unlink() if path.is_file() else path.rmdir()
    quick = scanner.changes()
    assert not quick.complete
    assert set(quick.files) == {"b/two.md", "b/three.md"}  # a/ did not change: not listed, not named
    assert quick.gone == {"b/old.md", "c/d/deep.md"}
    assert scanner.stat("a/one.md").size == 1 and scanner.stat("c/d/deep.md") is None


def test_a_fresh_stat_sees_an_edit_in_place_and_is_remembered(tmp_path: Path):
    post = aged_post(tmp_path, "a/one.md")
    aged_post(tmp_path, "a/two.md")
    scanner = ContentScanner(tmp_path)
    scanner.changes(full=True)
    before = scanner.stat("a/one.md")
    post.write_text(post.read_text(encoding="utf-8") + "更多正文。\n", encoding="utf-8")  # same directory entry
    assert scanner.stat("a/one.md") == before
    fresh = scanner.stat("a/one.md", fresh=True)
    assert (fresh.size, fresh.mtime_ns) == (post.stat().st_size, post.stat().st_mtime_ns) != (before.size, before.mtime_ns)
    assert scanner.stat("a/one.md") == fresh and scanner.stat("a/two.md").size == (tmp_path / "a/two.md").stat().st_size
    assert scanner.stat("a/none.md") is None and scanner.stat("b/one.md") is None
