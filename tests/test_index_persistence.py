"""The persisted index: reopened without tokenizing, updated incrementally, rebuilt when damaged."""

import errno
import gc
import json
import os
import time
import zlib
from pathlib import Path

import pytest

from retrieval import Archive, RefreshResult
from retrieval.storage import MANIFEST, CorruptIndex, IndexDir
from retrieval.stored import DamagedDocument

from conftest import write_post


def open_archive(content: Path, index: Path, **kw) -> Archive:
    return Archive.open(content, index, settle_seconds=0, **kw)


def snapshot(archive: Archive) -> list:
    return [(h.post.id, round(h.score, 9)) for h in archive.search("会议 南开 人工智能", limit=20).hits]


def test_reopen_tokenizes_nothing(content: Path, tmp_path: Path, monkeypatch):
    index = tmp_path / "index"
    before = snapshot(open_archive(content, index))
    from retrieval import tokenizer

    calls = []
    original = tokenizer.Tokenizer.tokenize
    monkeypatch.setattr(tokenizer.Tokenizer, "tokenize", lambda self, text: calls.append(text) or original(self, text))
    reopened = open_archive(content, index)
    assert calls == []
    assert snapshot(reopened) == before


def test_add_change_remove_are_incremental(content: Path, tmp_path: Path):
    index = tmp_path / "index"
    archive = open_archive(content, index)
    write_post(content, "new/2020-06-01-new.md", "新文章：航天卫星发射成功", "卫星发射成功。", urlname="sat")
    sports = content / "2019/2019-11-20-sports.md"
    sports.write_text(sports.read_text("utf-8").replace("三枚金牌", "五枚金牌"), "utf-8")
    (content / "misc/notes.txt").unlink()
    result = archive.refresh()
    assert result.added == ["sat"]
    assert result.changed == ["sports-2019-11-20"]
    assert len(result.removed) == 1
    assert not archive.refresh()  # nothing new the second time
    assert archive.search("卫星").hits[0].post.id == "sat"
    assert "五枚金牌" in archive.get("sports-2019-11-20").body
    reopened = open_archive(content, index)
    assert snapshot(reopened) == snapshot(archive)
    assert reopened.search("卫星").hits[0].post.id == "sat" and len(reopened) == len(archive)


def test_touched_file_is_not_reindexed(content: Path, tmp_path: Path):
    archive = open_archive(content, tmp_path / "index")
    seed = content / "2019/2019-11-13-732b943ded78f99c9f130328fe20b0b3.md"
    os.utime(seed, (time.time() + 5, time.time() + 5))
    assert not archive.refresh()


def test_file_being_written_waits_for_next_refresh(content: Path, tmp_path: Path):
    archive = Archive.open(content, tmp_path / "index", settle_seconds=30)
    path = write_post(content, "fresh.md", "刚写入的文章", "正文。", urlname="fresh")
    assert not archive.refresh()  # modified just now: maybe still being written
    old = time.time() - 60
    os.utime(path, (old, old))
    assert archive.refresh().added == ["fresh"]


def test_half_written_file_keeps_last_good_version(content: Path, tmp_path: Path):
    archive = open_archive(content, tmp_path / "index")
    sports = content / "2019/2019-11-20-sports.md"
    good = sports.read_bytes()
    sports.write_bytes(good[:40])  # cut inside the front matter
    result = archive.refresh()
    assert "2019/2019-11-20-sports.md" in result.skipped
    assert archive.get("sports-2019-11-20") is not None
    sports.write_bytes(good.replace("三枚".encode(), "四枚".encode()))
    assert archive.refresh().changed == ["sports-2019-11-20"]


@pytest.mark.parametrize("damage", ["delete", "truncate", "garbage_manifest", "flip_bytes", "format_version"])
def test_damaged_index_is_rebuilt(content: Path, tmp_path: Path, damage: str, caplog):
    index = tmp_path / "index"
    expected = snapshot(open_archive(content, index))
    manifest = json.loads((index / MANIFEST).read_text())
    victim = index / manifest["files"]["main.gaps"]["name"]
    if damage == "delete":
        victim.unlink()
    elif damage == "truncate":
        victim.write_bytes(victim.read_bytes()[:-7])
    elif damage == "garbage_manifest":
        (index / MANIFEST).write_bytes(b"\x00{not json")
    elif damage == "flip_bytes":
        data = bytearray(victim.read_bytes())
        data[-3] ^= 0xFF
        victim.write_bytes(bytes(data))
    else:
        manifest["format"] = -1
        (index / MANIFEST).write_text(json.dumps(manifest))
    caplog.set_level("WARNING")
    rebuilt = open_archive(content, index)
    assert snapshot(rebuilt) == expected
    assert any("building the index" in r.getMessage() for r in caplog.records)
    assert snapshot(open_archive(content, index)) == expected  # and it was saved again


def test_every_file_the_manifest_names_is_checked_before_use(content: Path, tmp_path: Path):
    """The files are checked together, in threads, before anything is read from them: one
    flipped byte in any of them, large or small, names that file. All but the stored posts,
    whose frames each carry a checksum checked as they are read (see the next test)."""
    index = tmp_path / "index"
    open_archive(content, index).close()
    files = json.loads((index / MANIFEST).read_text())["files"]
    assert len(files) > 30
    assert [key for key, entry in files.items() if entry.get("framed")] == ["store"]
    for key, entry in files.items():
        victim = index / entry["name"]
        good = victim.read_bytes()
        if not good or entry.get("framed"):
            continue
        victim.write_bytes(good[:-1] + bytes([good[-1] ^ 0x01]))
        directory = IndexDir(index)
        directory.read_manifest()
        with pytest.raises(CorruptIndex, match=f"{entry['name']} fails its checksum"):
            directory.check_all()
        victim.write_bytes(good)
    directory = IndexDir(index)
    directory.read_manifest()
    directory.check_all()  # undamaged again: no error


def damage_stored_post(archive: Archive, index: Path, post_id: str) -> None:
    """Flip a byte in the middle of a post's compressed frame, in place (the archive has the
    file mapped: truncating it would fault), as a failing disk would."""
    doc = archive.ids[post_id]
    offsets = archive.docs.stored.offsets()
    name = json.loads((index / MANIFEST).read_text())["files"]["store"]["name"]
    with open(index / name, "r+b") as blob:
        blob.seek((int(offsets[doc]) + int(offsets[doc + 1])) // 2)
        byte = blob.read(1)
        blob.seek(-1, os.SEEK_CUR)
        blob.write(bytes([byte[0] ^ 0xFF]))


@pytest.mark.parametrize("when", ["while serving", "before opening"])
def test_a_damaged_post_is_rebuilt_by_the_next_refresh(content: Path, tmp_path: Path, caplog, when: str):
    """A frame that goes bad fails the reads that need it (each frame carries a checksum: the
    open does not sum the whole store), and the next refresh (the push job's) rebuilds the
    index from the files."""
    index = tmp_path / "index"
    archive = open_archive(content, index)
    expected, post = snapshot(archive), archive.get("sports-2019-11-20")
    damage_stored_post(archive, index, "sports-2019-11-20")
    if when == "before opening":
        archive.close()
        caplog.set_level("INFO")
        archive = open_archive(content, index)
        assert not any("building the index" in r.getMessage() for r in caplog.records)
        assert archive.get("ai-conference") is not None
    with pytest.raises(DamagedDocument):
        archive.get("sports-2019-11-20")
    caplog.set_level("WARNING")
    result = archive.refresh(full=False)
    assert any("rebuilding the index from the files: stored document" in r.getMessage() for r in caplog.records)
    assert sorted(result.added) == sorted(archive.post_ids()) and len(result.added) > 5
    assert archive.get("sports-2019-11-20") == post
    assert snapshot(archive) == expected
    assert snapshot(open_archive(content, index)) == expected  # saved whole again: it passes its checks


def test_a_refresh_that_meets_a_damaged_post_rebuilds_instead_of_failing(content: Path, tmp_path: Path):
    """Removing a post reads its stored tokens back: were its frame damaged, every refresh
    would fail on it (and the push job with it) until a restart. It rebuilds instead, and a
    post added meanwhile is listed as added, so that the push still sees it."""
    index = tmp_path / "index"
    archive = open_archive(content, index)
    damage_stored_post(archive, index, "sports-2019-11-20")
    (content / "2019" / "2019-11-20-sports.md").unlink()
    write_post(content, "fresh.md", "新来的一篇", "人工智能会议在南开召开。", urlname="fresh")
    result = archive.refresh()
    assert archive.get("sports-2019-11-20") is None
    assert "fresh" in result.added and archive.get("fresh") is not None
    assert archive.refresh() == RefreshResult()  # and the next refresh finds nothing to do


def test_interrupted_save_leaves_previous_index(content: Path, tmp_path: Path, monkeypatch):
    index = tmp_path / "index"
    archive = open_archive(content, index)
    expected = snapshot(archive)
    from retrieval import storage

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed mid-save")

    write_post(content, "late.md", "会议纪要", "会议。", urlname="late")
    monkeypatch.setattr(storage.Save, "commit", crash)
    with pytest.raises(KeyboardInterrupt):
        archive.refresh()
    monkeypatch.undo()
    (content / "late.md").unlink()
    assert snapshot(open_archive(content, index)) == expected  # old manifest, old files, garbage ignored


def test_changed_tokenizer_settings_rebuild(content: Path, tmp_path: Path, caplog):
    index = tmp_path / "index"
    open_archive(content, index)
    user_dict = tmp_path / "user.dict"
    user_dict.write_text("主题教育 100 n\n", "utf-8")
    caplog.set_level("WARNING")
    archive = open_archive(content, index, user_dict=user_dict)
    assert any("tokenizer" in r.getMessage() for r in caplog.records)
    assert "主题教育" in archive.tokenizer.tokenize("开展主题教育")


def test_index_inside_content_is_refused(content: Path):
    with pytest.raises(ValueError):
        Archive.open(content, content / "index")


def test_merge_and_compaction_keep_results(content: Path, tmp_path: Path, monkeypatch):
    from retrieval import index as index_module

    monkeypatch.setattr(index_module, "MERGE_MIN_DOCS", 3)
    idx = tmp_path / "index"
    archive = open_archive(content, idx)
    for i in range(6):
        write_post(content, f"extra/{i}.md", f"额外的会议 {i}", f"会议内容 {i}。", urlname=f"extra{i}")
    for name in ("misc/notes.txt", "misc/no-date.md", "2019/2019-12-02-ai.md", "misc/2018-05-04-undated-youth.md"):
        (content / name).unlink()
    archive.refresh()
    assert archive.index.delta.size == 0  # merged into the main segment
    assert archive.index.live.all()  # and compacted
    assert snapshot(open_archive(content, idx)) == snapshot(archive)
    assert archive.get("extra5").title == "额外的会议 5"


def test_a_save_whose_write_fails_keeps_the_last_manifest_and_the_next_save_is_whole(content: Path, tmp_path: Path,
                                                                                     monkeypatch, caplog):
    """The files of a save are written in a thread of its own, so a failing write (the disk
    full) is raised at the commit: the manifest stays the last one, and the archive does not
    count what it could not write as saved: the next save, though it merges nothing, writes
    everything whole (an incremental one would leave the merged post out of the index)."""
    from retrieval import index as index_module

    monkeypatch.setattr(index_module, "MERGE_MIN_DOCS", 1)  # every refresh merges and saves whole
    idx = tmp_path / "index"
    archive = open_archive(content, idx)
    manifest = (idx / MANIFEST).read_text()
    write_post(content, "extra/full.md", "磁盘写满", "正文 zqxfull。", urlname="disk-full")
    real_fsync, calls = os.fsync, []

    def full_disk(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left on device"):
        archive.refresh()
    monkeypatch.setattr(os, "fsync", real_fsync)
    monkeypatch.setattr(index_module, "MERGE_MIN_DOCS", 2000)  # the next refresh merges nothing
    assert (idx / MANIFEST).read_text() == manifest
    write_post(content, "extra/room.md", "又有空间", "正文 zqxroom。", urlname="room-again")
    archive.refresh()
    caplog.set_level("WARNING")
    reopened = open_archive(content, idx)
    assert "building the index" not in caplog.text  # loaded as saved, not found malformed and rebuilt
    assert [hit.post.id for hit in reopened.search("zqxfull").hits] == ["disk-full"]
    assert [hit.post.id for hit in reopened.search("zqxroom").hits] == ["room-again"]
    assert snapshot(reopened) == snapshot(open_archive(content, tmp_path / "fresh"))


def age(*paths: Path, seconds: float) -> None:
    """Set the modification time of ``paths`` to ``seconds`` ago."""
    then = time.time() - seconds
    for path in paths:
        os.utime(path, (then, then))


def test_a_quick_refresh_looks_only_at_directories_that_changed(content: Path, tmp_path: Path, monkeypatch):
    write_post(content, "quiet/one.md", "安静的目录", "没有变化。", urlname="quiet-one")
    write_post(content, "busy/one.md", "忙碌的目录", "第一篇。", urlname="busy-one")
    age(*content.rglob("*"), content, seconds=60)  # nothing racy: unchanged directories are not listed again
    archive = open_archive(content, tmp_path / "index")
    from retrieval.files import FileTable

    looked_at = []
    original = FileTable.unchanged
    monkeypatch.setattr(FileTable, "unchanged", lambda self, rel, *a: looked_at.append(rel) or original(self, rel, *a))
    write_post(content, "busy/two.md", "忙碌的目录", "第二篇。", urlname="busy-two")
    (content / "quiet/one.md").unlink()
    result = archive.refresh(full=False)
    assert result.added == ["busy-two"] and result.removed == ["quiet-one"]
    assert sorted(looked_at) == ["busy/one.md", "busy/two.md"]
    assert archive.get("quiet-one") is None and archive.get("busy-two") is not None


def test_a_file_left_to_settle_is_read_by_a_later_quick_refresh(content: Path, tmp_path: Path):
    archive = Archive.open(content, tmp_path / "index", settle_seconds=30)
    path = write_post(content, "late/fresh.md", "刚写完的文章", "正文。", urlname="fresh")
    age(path, path.parent, seconds=10)  # settling (10 s < 30 s), but not racy for the scanner
    assert not archive.refresh(full=False)
    age(path, seconds=60)  # its directory does not change: only the table of files left to settle finds it
    assert archive.refresh(full=False).added == ["fresh"]


def test_open_without_sync_serves_the_saved_index_until_a_refresh(content: Path, tmp_path: Path):
    index = tmp_path / "index"
    before = len(open_archive(content, index))
    write_post(content, "after.md", "关机后写的文章", "正文。", urlname="after")
    age(content / "after.md", seconds=60)
    served = open_archive(content, index, sync=False)
    assert len(served) == before and served.get("after") is None
    assert served.refresh().added == ["after"] and len(served) == before + 1


def test_a_compaction_after_reopening_keeps_every_file_with_its_post(content: Path, tmp_path: Path, monkeypatch):
    from retrieval import index as index_module

    monkeypatch.setattr(index_module, "MERGE_MIN_DOCS", 3)
    idx = tmp_path / "index"
    with open_archive(content, idx):
        pass
    archive = open_archive(content, idx)  # its file table is now the saved columns
    for i in range(6):
        write_post(content, f"extra/{i}.md", f"额外的会议 {i}", f"会议内容 {i}。", urlname=f"extra{i}")
    for name in ("misc/notes.txt", "misc/no-date.md", "2019/2019-12-02-ai.md", "misc/2018-05-04-undated-youth.md"):
        (content / name).unlink()
    archive.refresh()
    assert archive.index.live.all() and archive.index.delta.size == 0  # merged and compacted
    for current in (archive, open_archive(content, idx)):
        indexed = {rel: e.post_id for rel, e in current.files.items() if e.doc is not None}
        assert {rel: current.docs.post(current.files[rel].doc).id for rel in indexed} == indexed
        assert sorted(current.post_ids()) == sorted(indexed.values()) and len(indexed) == 9


def test_adding_a_post_appends_to_the_per_document_arrays_instead_of_rewriting_them(content: Path, tmp_path: Path):
    """Each document's length, date and frame offset never change until a compaction: an
    incremental save appends the new document's values to the same files (a reader's
    mapping of them stays valid), and a reader of the new manifest sees every value."""
    index = tmp_path / "index"
    archive = open_archive(content, index)
    before = json.loads((index / MANIFEST).read_text())["files"]
    n = len(archive.docs)
    write_post(content, "one-more.md", "又一篇", "新增的一篇内容。", urlname="one-more")
    assert archive.refresh().added == ["one-more"]
    after = json.loads((index / MANIFEST).read_text())["files"]
    for key, width in (("doc_len", 4), ("dates", 8), ("store.offsets", 8)):
        assert after[key]["name"] == before[key]["name"]
        assert after[key]["size"] == before[key]["size"] + width
    assert after["live"]["name"] != before["live"]["name"]  # (a removal changes old values: written whole)
    reader = open_archive(content, index, access="read", sync=False)
    assert len(reader.docs) == n + 1
    assert reader.get("one-more") == archive.get("one-more")
    assert reader.index.doc_len.tolist() == archive.index.doc_len.tolist()
    assert reader.docs.dates.tolist() == archive.docs.dates.tolist()


def test_a_per_document_array_of_a_broken_width_is_damage(content: Path, tmp_path: Path, caplog):
    index = tmp_path / "index"
    expected = snapshot(open_archive(content, index))
    manifest = json.loads((index / MANIFEST).read_text())
    victim = index / manifest["files"]["dates"]["name"]
    with open(victim, "ab") as fh:
        fh.write(b"\x01\x02\x03")
    entry = manifest["files"]["dates"]
    entry["size"] += 3
    entry["crc"] = zlib.crc32(victim.read_bytes())
    (index / MANIFEST).write_text(json.dumps(manifest))
    caplog.set_level("WARNING")
    assert snapshot(open_archive(content, index)) == expected
    assert any("dates is not a whole number of int64 values" in r.getMessage() for r in caplog.records)


def mapped_deleted_files(index: Path) -> list[str]:
    """Files of ``index`` this process still maps although they were deleted (their disk space
    stays taken until the mapping goes)."""
    gc.collect()
    maps = Path("/proc/self/maps").read_text().splitlines()
    return sorted({line.split(None, 5)[-1] for line in maps if str(index) in line and line.endswith("(deleted)")})


def test_replaced_index_files_are_let_go(content: Path, tmp_path: Path, monkeypatch):
    """A build that saves and reloads checkpoints, then merges in later refreshes, replaces
    the index's files again and again: the old ones are deleted, and nothing may keep them
    mapped (a long-running bot would hold gigabytes of deleted files)."""
    import retrieval.archive
    from retrieval import index as index_module

    for i in range(12):
        write_post(content, f"many/{i:02d}.md", f"会议 {i}", f"会议内容 {i}。", urlname=f"many{i}")
    monkeypatch.setattr(retrieval.archive, "CHECKPOINT_FILES", 5)
    monkeypatch.setattr(index_module, "MERGE_MIN_DOCS", 2)
    index = tmp_path / "index"
    archive = open_archive(content, index)
    for round_ in range(4):
        for i in range(3):
            write_post(content, f"later/{round_}-{i}.md", f"后来 {round_}", f"内容 {i}。", urlname=f"later{round_}-{i}")
        archive.refresh()
    assert archive.get("later3-2") is not None
    assert mapped_deleted_files(index) == []


def read_ahead_of(path: Path) -> dict[str, set[bool]]:
    """For each file mapped from ``path``'s directory: whether the kernel may read ahead of a
    miss in it (``rr``, MADV_RANDOM, in the mapping's VmFlags of /proc/self/smaps, says no),
    for each of its mappings."""
    found: dict[str, set[bool]] = {}
    current = None
    for line in Path("/proc/self/smaps").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 6 and "-" in fields[0] and not line.startswith("VmFlags"):
            current = fields[5] if fields[5].startswith(str(path)) else None
        elif current is not None and line.startswith("VmFlags:"):
            found.setdefault(Path(current).name, set()).add("rr" not in fields[1:])
    return found


def test_stored_posts_are_read_without_read_ahead(content: Path, tmp_path: Path):
    """A post's frame is a kilobyte somewhere in a blob of a gigabyte at a million posts: read
    ahead 128 KB at every miss, the summaries of a query filled the page cache with other posts
    and pushed the postings out. The postings are read a term's run at a time, read ahead."""
    index = tmp_path / "index"
    open_archive(content, index).close()
    gc.collect()  # (the building archive's maps gone: only the loaded one's are looked at)
    archive = open_archive(content, index)  # (loaded from disk, not just built)
    assert archive.get("sports-2019-11-20") is not None
    read_ahead = read_ahead_of(index)
    store = json.loads((index / MANIFEST).read_text())["files"]["store"]["name"]
    gaps = json.loads((index / MANIFEST).read_text())["files"]["main.gaps"]["name"]
    assert (read_ahead[store], read_ahead[gaps]) == ({False}, {True})


def test_one_refresh_files_new_changed_and_duplicate_posts_in_order(tmp_path: Path):
    """A batch of files is filed in the order of their names, each as it would be alone: the
    new posts at once, the rest one by one between them (an id taken by a post just before it
    in the same batch, or by an edited post whose id changed, makes a duplicate)."""
    content = tmp_path / "content"
    write_post(content, "b_existing.md", "旧闻", "香港经济。", urlname="e")
    write_post(content, "c_moved.md", "搬家", "香港教育。", urlname="m")
    archive = Archive.open(content, tmp_path / "index", settle_seconds=0)
    write_post(content, "a_new.md", "新闻甲", "科技创新。", urlname="n1")
    write_post(content, "c_moved.md", "搬家", "香港教育改革。", urlname="m2")  # its id changes
    write_post(content, "d_dup1.md", "同号一", "农业。", urlname="d")
    write_post(content, "d_dup2.md", "同号二", "农业改革。", urlname="d")  # taken by d_dup1 just before
    write_post(content, "e_taken.md", "抢号", "文化。", urlname="e")  # taken by b_existing
    write_post(content, "f_new.md", "新闻乙", "医疗。", urlname="n2")
    write_post(content, "g_m2.md", "抢新号", "城市。", urlname="m2")  # taken by c_moved's new id
    result = archive.refresh()
    assert result.added == ["n1", "d", "n2"]
    assert result.changed == ["m2"]
    assert result.removed == []
    assert result.skipped == {
        "d_dup2.md": "duplicate id 'd' (already used by d_dup1.md)",
        "e_taken.md": "duplicate id 'e' (already used by b_existing.md)",
        "g_m2.md": "duplicate id 'm2' (already used by c_moved.md)",
    }
    assert sorted(archive.post_ids()) == ["d", "e", "m2", "n1", "n2"]
    assert [hit.post.id for hit in archive.search("农业").hits] == ["d"]
    assert archive.get("m2").body == "香港教育改革。" and archive.get("m") is None
    reopened = Archive.open(content, tmp_path / "index", settle_seconds=0)
    assert sorted(reopened.post_ids()) == ["d", "e", "m2", "n1", "n2"]
    assert reopened.files["d_dup2.md"].reason == "duplicate id 'd' (already used by d_dup1.md)"


def test_posts_are_numbered_in_the_order_of_their_names_whatever_order_they_were_written(tmp_path: Path):
    """A first build (which takes every file without asking the file table) and a later refresh
    number documents in the order of the files' names, not of the directory listings; the
    first of two files with one id keeps it."""
    content = tmp_path / "content"
    names = ["2020/b.md", "2019/z.md", "2020/a.md", "2019/a.md", "c.md", "2021/x/y.md", "a.md"]
    for i, name in enumerate(names):
        write_post(content, name, f"新闻{i}", "香港经济。", urlname=f"p{i}" if name != "c.md" else "p0")
    archive = Archive.open(content, tmp_path / "index", settle_seconds=0)
    build_order = ["2019/a.md", "2019/z.md", "2020/a.md", "2020/b.md", "2021/x/y.md", "a.md"]
    assert [archive.files[rel].doc for rel in build_order] == [0, 1, 2, 3, 4, 5]
    assert archive.files["c.md"].reason == "duplicate id 'p0' (already used by 2020/b.md)"
    for name in ["2022/b.md", "0.md", "2022/a.md"]:
        write_post(content, name, "新闻", "香港经济。", urlname=name)
    assert archive.refresh().added == ["0.md", "2022/a.md", "2022/b.md"]
    assert [archive.files[rel].doc for rel in ["0.md", "2022/a.md", "2022/b.md"]] == [6, 7, 8]
