"""The compact index parts: the hashed string table, compressed blocks, packed postings, merges."""

from __future__ import annotations

import contextlib
import ctypes
import json
import mmap
import os
import random
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrieval import postings as postings_module
from retrieval import stored, strings
from retrieval.files import FileEntry, FileTable
from retrieval.gaps import DocGaps
from retrieval.postings import Segment, bits, merge, narrow, unbits
from retrieval.stored import Codec, DamagedDocument, FrameStore
from retrieval.strings import Strings


def reopened(table: Strings) -> Strings:
    blob, offsets, hashes, order = table.saved_form()
    again = Strings(memoryview(blob), offsets, hashes, order)
    again.check()
    return again


@given(st.lists(st.text(min_size=1, max_size=6), unique=True, max_size=40),
       st.lists(st.text(min_size=1, max_size=6), max_size=10))
@settings(max_examples=60, deadline=None)
def test_strings_keep_their_numbers_across_saves(base, later):
    table = Strings.of(base)
    numbers = {text: table.add(text) for text in later}
    for number, text in enumerate(base):
        assert table.get(text) == number and table.string(number) == text
    again = reopened(table)
    every = lambda t: [t.string(i) for i in range(len(t))]  # noqa: E731
    assert every(again) == every(table) == base + list(dict.fromkeys(t for t in later if t not in base))
    for text, number in numbers.items():
        assert again[text] == number
    assert again.get("\x00never") is None and "\x00never" not in again


def collide(monkeypatch) -> None:
    """Every string hashes to 7."""
    monkeypatch.setattr(strings, "string_hash", lambda data: 7)
    monkeypatch.setattr(strings, "string_hashes", lambda data: np.full(len(data), 7, np.uint64))


@given(st.lists(st.binary(max_size=40), max_size=20))
def test_hashes_made_together_are_the_hashes_made_one_by_one(data):
    assert strings.string_hashes(data).tolist() == [strings.string_hash(item) for item in data]
    assert strings.string_hashes(data).dtype == np.uint64


def test_colliding_hashes_are_told_apart_by_their_bytes(monkeypatch):
    collide(monkeypatch)
    table = reopened(Strings.of(["香港", "经济", "主题教育"]))
    assert [table.get(t) for t in ("主题教育", "香港", "经济", "澳门")] == [2, 0, 1, None]


@pytest.mark.parametrize("damage", ["unsorted", "not_a_permutation", "offsets"])
def test_a_damaged_string_table_is_refused(damage):
    blob, offsets, hashes, order = Strings.of(["甲", "乙", "丙"]).saved_form()
    if damage == "unsorted":
        hashes = hashes[::-1].copy()
    elif damage == "not_a_permutation":
        order = np.array([0, 0, 1])
    else:
        offsets = offsets + 1
    with pytest.raises(ValueError):
        Strings(blob, offsets, hashes, order).check()


def open_files_in(directory: Path) -> int:
    """This process's open files in ``directory`` (an unnamed temporary file included)."""
    fds = Path("/proc/self/fd")
    return sum(1 for fd in fds.iterdir() if os.path.realpath(fd).startswith(str(directory) + os.sep))


@pytest.mark.parametrize("spill", [False, True])
def test_stored_documents_read_back_before_and_after_the_dictionary(monkeypatch, tmp_path: Path, spill: bool):
    monkeypatch.setattr(stored, "TRAIN_DOCS", 80)
    monkeypatch.setattr(stored, "SPILL_BYTES", 300)  # (spilled after a few frames, where it may)
    store = FrameStore(spill_dir=tmp_path if spill else None)
    docs = [f"第{i}篇：".encode() + "新闻联播报道了会议。".encode() * (i % 7) for i in range(120)]
    for data in docs[:50]:
        store.append(data)
    assert [store[i] for i in range(50)] == docs[:50] and not store.trained  # raw, waiting
    assert list(store.many([49, 3])) == [docs[49], docs[3]]
    for data in docs[50:100]:
        store.append(data)
    assert store.trained  # trained at the 80th
    saved, offsets, dictionary = store.unsaved_bytes(), store.offsets(), store.dictionary
    store.mark_saved()
    assert (open_files_in(tmp_path) > 0) == spill  # the unsaved frames, in a file that has no name
    reopened = FrameStore(memoryview(saved), offsets, memoryview(dictionary), spill_dir=tmp_path if spill else None)
    for data in docs[100:]:
        reopened.append(data)
    assert [reopened[i] for i in range(120)] == docs
    picked = [119, 0, 105, 50, 99, 100, 3]  # saved, and appended since
    assert list(reopened.many(picked)) == [docs[i] for i in picked]
    assert len(saved) < sum(map(len, docs[:100])) / 3
    assert [reopened.subset([3, 110])[i] for i in (0, 1)] == [docs[3], docs[110]]


def test_documents_after_the_dictionary_are_compressed_a_batch_at_a_time(monkeypatch):
    monkeypatch.setattr(stored, "TRAIN_DOCS", 80)
    store = FrameStore()
    docs = [f"第{i}篇：".encode() + "新闻联播报道了会议。".encode() * (i % 7) for i in range(80 + 2 * stored.COMPRESS_BATCH)]
    for data in docs[:80]:
        store.append(data)
    assert store.trained and len(store.offsets()) == 81  # the first 80 trained it, then were compressed
    for data in docs[80 : 80 + stored.COMPRESS_BATCH - 1]:
        store.append(data)
    assert len(store.offsets()) == 81  # raw, waiting for the rest of their batch
    assert list(store.many([80, 1, 80 + stored.COMPRESS_BATCH - 2])) == [docs[80], docs[1], docs[80 + stored.COMPRESS_BATCH - 2]]
    store.append(docs[80 + stored.COMPRESS_BATCH - 1])
    assert len(store.offsets()) == 81 + stored.COMPRESS_BATCH  # the batch, compressed together
    for data in docs[80 + stored.COMPRESS_BATCH : 82 + stored.COMPRESS_BATCH]:
        store.append(data)
    saved, offsets = store.unsaved_bytes(), store.offsets()  # a save compresses what waits
    assert len(offsets) == 83 + stored.COMPRESS_BATCH
    reopened = FrameStore(memoryview(saved), offsets, memoryview(store.dictionary))
    assert list(reopened.many(list(range(len(offsets) - 1)))) == docs[: 82 + stored.COMPRESS_BATCH]


def test_frames_made_elsewhere_follow_the_documents_waiting_raw(monkeypatch):
    """A worker's frame (made with a :class:`Codec` of the store's dictionary) comes after the
    documents still waiting raw, which are compressed first; a frame of another dictionary,
    or one before the store has any, is refused."""
    monkeypatch.setattr(stored, "TRAIN_DOCS", 80)
    store = FrameStore()
    docs = [f"第{i}篇：".encode() + "新闻联播报道了会议。".encode() * (i % 7) for i in range(84)]
    with pytest.raises(ValueError, match="dictionary this store does not have"):
        store.append_frame(Codec(b"").compress(docs[0]), Codec(b"").key)
    for data in docs[:81]:
        store.append(data)  # 80 train the dictionary; the 81st waits raw
    codec = Codec(store.trained_dictionary)
    store.append_frame(codec.compress(docs[81]), codec.key)
    assert len(store.offsets()) == 83  # the waiting one first, then the frame
    other = Codec(bytes(reversed(store.trained_dictionary)))
    with pytest.raises(ValueError, match="dictionary this store does not have"):
        store.append_frame(other.compress(docs[82]), other.key)
    store.append(docs[82])
    assert [store.frame(i) for i in (80, 81)] == [codec.compress(docs[80]), codec.compress(docs[81])]
    assert list(store.many(list(range(83)))) == docs[:83]
    with pytest.raises(ValueError, match="dictionary this store does not have"):
        store.append_frames([other.compress(docs[83])], other.key)
    store.append_frames([codec.compress(data) for data in docs[80:84]], codec.key)  # a batch at once,
    assert len(store.offsets()) == 88  # after the one waiting raw
    assert [store.frame(i) for i in range(83, 87)] == [codec.compress(data) for data in docs[80:84]]
    assert list(store.many(list(range(87)))) == docs[:83] + docs[80:84]


def resident(mapped: mmap.mmap, lo: int, hi: int) -> bool:
    """Whether bytes ``lo:hi`` of a file mapping are all in the page cache (mincore(2))."""
    page = mmap.PAGESIZE
    start, pages = lo - lo % page, (hi - lo + lo % page + page - 1) // page
    view = np.frombuffer(mapped, np.uint8)
    flags = (ctypes.c_ubyte * pages)()
    try:
        if ctypes.CDLL(None, use_errno=True).mincore(ctypes.c_void_p(view.ctypes.data + start),
                                                     ctypes.c_size_t(pages * page), flags) != 0:
            raise OSError(ctypes.get_errno(), "mincore")
    finally:
        del view
    return all(flag & 1 for flag in flags)


def test_a_batch_of_stored_documents_is_asked_of_the_disk_at_once(tmp_path: Path):
    """Read without read-ahead, each frame missing from the page cache would wait for the disk
    alone: ``many`` first asks for all the frames of a batch (MADV_WILLNEED). Seen with the
    real kernel: the file's pages are dropped from the cache, and once the first document of
    a batch is read, the batch's last is on its way in although nothing read it."""
    store = FrameStore()
    rnd = random.Random(3)
    for i in range(400):  # 4 KB of incompressible text each: a page or two per frame
        store.append("".join(chr(0x4E00 + rnd.randrange(20000)) for _ in range(1400)).encode())
    path = tmp_path / "store.bin"
    path.write_bytes(store.unsaved_bytes())
    offsets, dictionary = store.offsets(), store.dictionary
    with path.open("rb") as fh:
        mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        mapped.madvise(mmap.MADV_RANDOM)
        os.fsync(fh.fileno())
        os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        frame = lambda doc: (int(offsets[doc]), int(offsets[doc + 1]))  # noqa: E731
        if resident(mapped, *frame(399)):
            pytest.skip("this file system keeps the file's pages cached (tmpfs?)")
        reader = FrameStore(memoryview(mapped)[: len(mapped)], offsets, memoryview(dictionary))
        batch = reader.many([10, 200, 399])
        assert next(batch) == store[10]
        deadline = time.monotonic() + 10
        while not resident(mapped, *frame(399)) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert resident(mapped, *frame(399)) and not resident(mapped, *frame(300))
        assert list(batch) == [store[200], store[399]]
        del reader, batch
        mapped.close()


def test_a_store_begun_too_small_for_a_dictionary_gets_one_when_rewritten(monkeypatch):
    monkeypatch.setattr(stored, "TRAIN_DOCS", 80)
    store = FrameStore()
    store.append("开篇。".encode())
    store.seal()  # saved with one document: no dictionary
    docs = ["开篇。".encode()] + [f"第{i}篇：新闻联播报道了会议。".encode() * 3 for i in range(99)]
    for data in docs[1:]:
        store.append(data)
    assert not store.trained and store.needs_dictionary
    rewritten = store.subset(list(range(100)))
    assert rewritten.trained and not rewritten.needs_dictionary
    assert [rewritten[i] for i in range(100)] == docs


def test_a_damaged_document_is_reported_not_returned():
    store = FrameStore()
    for i in range(70):
        store.append(f"会议纪要{i}".encode() * 50)
    blob = bytearray(store.unsaved_bytes())
    offsets = store.offsets()
    blob[int(offsets[1]) - 3] ^= 0xFF  # inside document 0's checksum or data
    with pytest.raises(DamagedDocument):
        FrameStore(bytes(blob), offsets, store.dictionary)[0]
    with pytest.raises(DamagedDocument):
        list(FrameStore(bytes(blob), offsets, store.dictionary).many([1, 0]))


def test_frequencies_take_the_smallest_type_and_flags_one_bit():
    assert narrow(np.array([1, 255])).dtype == np.uint8
    assert narrow(np.array([1, 256])).dtype == np.uint16 and narrow(np.array([70000])).tolist() == [70000]
    flags = np.array([i % 3 == 0 for i in range(21)])
    packed = bits(flags)
    assert packed.shape == (3,) and unbits(packed, 5, 19).tolist() == flags[5:19].tolist()


postings = st.lists(st.tuples(st.integers(0, 5), st.integers(1, 300), st.booleans()), max_size=12)


@given(st.lists(postings, min_size=1, max_size=4), st.data())
@settings(max_examples=80, deadline=None)
def test_merge_equals_sorting_every_posting(per_doc, data):
    """Segments of consecutive documents (each with rows for only as many terms as it uses)
    merge into what one sort of all postings gives, a few terms' postings at a time or all at
    once, and compacted (dead documents dropped, the rest renumbered) or not."""
    n_terms, segments, rows = 6, [], []
    doc = 0
    for seg_docs in per_doc:
        cols = []
        for term, tf, title in sorted(set((t, f, b) for t, f, b in seg_docs)):
            if not any(c[0] == term for c in cols):
                cols.append((term, doc, tf, title))
            doc += 1
        if cols:
            terms, docs, tfs, flags = (np.array(c) for c in zip(*cols))
            segments.append(Segment.from_postings(terms, docs, tfs, flags, int(terms.max()) + 1))
            rows += cols
    live = np.array(data.draw(st.lists(st.booleans(), min_size=doc, max_size=doc)), np.bool_)
    chunk, compact, to_files = data.draw(st.integers(1, 8)), data.draw(st.booleans()), data.draw(st.booleans())
    renumber = np.where(live, np.cumsum(live) - 1, -1) if compact else None
    with tempfile.TemporaryDirectory() as spill, file_backed_from(0 if to_files else postings_module.FILE_BACKED_BYTES):
        merged = merge(segments, live, n_terms, renumber, chunk=chunk, spill_dir=Path(spill))
        new = (lambda d: int(renumber[d])) if compact else (lambda d: d)
        kept = sorted((t, new(d), f, b) for t, d, f, b in rows if live[d])
        got = [(t, int(d), int(f), bool(b)) for t in range(n_terms) for d, f, b in zip(*merged.postings(t))]
        assert got == kept
        merged_many = len(segments) > 1 or not live.all() or compact
        assert (open_files_in(Path(spill)) > 0) == (to_files and merged_many and bool(kept))  # (nothing kept: no file)
        del merged
        assert open_files_in(Path(spill)) == 0  # the files went with the segment


segment_postings = st.lists(st.tuples(st.integers(0, 7), st.integers(0, 3), st.integers(1, 70_000), st.booleans()),
                            min_size=1, max_size=25)


@pytest.mark.skipif(postings_module.native is None, reason="the C extension is not built")
@given(st.lists(st.tuples(st.integers(0, 200_000), segment_postings), min_size=1, max_size=5), st.data())
@settings(max_examples=120, deadline=None)
def test_joining_rows_in_c_equals_merging_them(per_segment, data):
    """When every document is live and none is renumbered, a merge joins each term's rows of
    one segment after another's in C (``_joined_rows``): the same pointers, gaps (widths of 1,
    2 and 4 bytes: documents up to a million apart), frequencies (of different types) and title
    flags as decoding, placing and encoding them again (``_merged_rows``), for any range of terms.
    Documents that do not ascend from one segment to the next are refused by both."""
    segments, doc, top, n_terms = [], 0, 0, 8
    overlap = data.draw(st.booleans())
    for jump, rows in per_segment:
        doc = doc + jump if not overlap else max(doc - jump, 0)
        by_doc = {}
        for term, step, tf, title in rows:
            doc += step
            by_doc.setdefault((term, doc), (tf, title))
        terms, docs = (np.array(c) for c in zip(*by_doc))
        tfs, flags = (np.array(c) for c in zip(*by_doc.values()))
        segments.append(Segment.from_postings(terms, docs.astype(np.int32), tfs, flags.astype(np.bool_), int(terms.max()) + 1))
        top = max(top, doc)
        doc += 1
    counts = np.zeros(n_terms, np.int64)
    for seg in segments:
        counts[: seg.n_terms] += np.diff(seg.ptr)
    a = data.draw(st.integers(0, n_terms - 1))
    b = data.draw(st.integers(a + 1, n_terms))
    tf_type = np.result_type(np.uint8, *(seg.tfs.dtype for seg in segments), data.draw(st.sampled_from([np.uint8, np.uint32])))
    live = np.ones(top + 1, np.bool_)
    try:
        expected = postings_module._merged_rows(segments, a, b, counts, live, None, tf_type)
    except ValueError:
        with pytest.raises(ValueError, match="do not ascend"):
            postings_module._joined_rows(segments, a, b, int(counts[a:b].sum()), tf_type)
        return
    got = postings_module._joined_rows(segments, a, b, int(counts[a:b].sum()), tf_type)
    ptr, gaps, tfs, flags = expected
    assert got[0].tolist() == ptr.tolist()
    assert (got[1].data.tolist(), got[1].start.tolist(), got[1].width.tolist()) == \
        (gaps.data.tolist(), gaps.start.tolist(), gaps.width.tolist())
    assert got[2].dtype == tfs.dtype and got[2].tolist() == tfs.tolist() and got[3].tolist() == flags.tolist()


@contextlib.contextmanager
def file_backed_from(nbytes: int) -> Iterator[None]:
    """Merge outputs of ``nbytes`` or more are mapped files, for the block."""
    was = postings_module.FILE_BACKED_BYTES
    postings_module.FILE_BACKED_BYTES = nbytes
    try:
        yield
    finally:
        postings_module.FILE_BACKED_BYTES = was


def test_the_file_table_keeps_every_field_through_a_save():
    ids = Strings()
    for post_id in ("a", "b", "a"):  # document 2 is post a again, edited
        ids.append(post_id)
    table = FileTable(post_id=ids.string)
    digest = "0f" * 16
    table["x.md"] = FileEntry(10, 100, digest, 0, "a")
    table["y.md"] = FileEntry(20, 200, digest, 1, "b", warnings=["no date"])
    table["dup.md"] = FileEntry(30, 300, digest, None, "a", "duplicate id 'a'")
    table["bad\\xff.md"] = FileEntry(0, 400, "", None, None, "file name is not valid UTF-8")
    table["later.md"] = FileEntry(5, 500, digest, None, None, "dated in the future", recheck_at=1.5e9)
    names, columns, rare = table.saved_form()
    saved = FileTable(reopened(names), columns, json.loads(json.dumps(rare)), ids.string)
    assert dict(saved.items()) == dict(table.items())
    saved["x.md"] = FileEntry(11, 101, digest, 2, "a")  # edited: a new document
    saved.pop("y.md")
    assert sorted(saved.keys()) == ["bad\\xff.md", "dup.md", "later.md", "x.md"]
    assert saved.path_of(2) == "x.md" and saved.path_of(1) is None
    assert sorted(rel for rel, _ in saved.noted()) == ["bad\\xff.md", "dup.md", "later.md"]
    saved.renumber(np.array([-1, -1, 0]))
    assert saved["x.md"].doc == 0 and saved["x.md"].post_id == "a"


ENTRIES = st.builds(
    FileEntry, st.integers(0, 1 << 40), st.integers(0, 1 << 62), st.sampled_from(["0f" * 16, "ab" * 16, "", "zz"]),
    st.none() | st.integers(0, 5), st.none() | st.sampled_from(["a", "b", "c"]),
    st.none() | st.just("duplicate id 'a'"), st.lists(st.just("no date"), max_size=1),
    st.none() | st.just(1.5e9)).filter(lambda e: e.doc is None or e.post_id is not None)  # (a document has an id)


@given(st.dictionaries(st.text(min_size=1, max_size=5), ENTRIES, max_size=12),
       st.dictionaries(st.text(min_size=1, max_size=5), st.none() | ENTRIES, max_size=12))
@settings(max_examples=150, deadline=None)
def test_a_saved_file_table_changed_and_saved_again_holds_exactly_its_entries(first, changes):
    """The second save takes the unchanged rows from the columns as they are: what it writes
    must read back as the table it was, in the same order (replaced, removed and new names)."""
    post_id = "abcabc".__getitem__  # the post id of documents 0-5
    table = FileTable(post_id=post_id)
    for rel, entry in first.items():
        table[rel] = entry
    names, columns, rare = table.saved_form()
    table = FileTable(reopened(names), columns, json.loads(json.dumps(rare)), post_id)
    for rel, entry in changes.items():
        if entry is not None:
            table[rel] = entry
        else:
            table.forget(rel)
    names, columns, rare = table.saved_form()
    saved = FileTable(reopened(names), columns, json.loads(json.dumps(rare)), post_id)
    assert list(saved.items()) == list(table.items())
    expected = {**first, **changes}
    assert dict(saved.items()) == {rel: e for rel, e in expected.items() if e is not None}


@given(st.lists(st.text(max_size=4), max_size=20), st.lists(st.text(max_size=4), max_size=6), st.data())
@settings(max_examples=150, deadline=None)
def test_a_string_table_saves_the_strings_it_keeps_then_more(base, added, data):
    table = Strings.of(base)
    for text in added:
        table.append(text)
    everything = base + added
    keep = np.array(data.draw(st.lists(st.booleans(), min_size=len(everything), max_size=len(everything))), np.bool_)
    more = data.draw(st.lists(st.text(max_size=4), max_size=5))
    blob, offsets, hashes, order = table.saved_form(keep, more)
    again = Strings(memoryview(blob), offsets, hashes, order)
    again.check()
    kept = [text for text, k in zip(everything, keep.tolist()) if k] + more
    assert [again.string(i) for i in range(len(again))] == kept
    _, fresh_offsets, fresh_hashes, fresh_order = Strings.encode(kept)  # the index made from scratch
    assert (offsets.tolist(), hashes.tolist(), order.tolist()) == \
        (fresh_offsets.tolist(), fresh_hashes.tolist(), fresh_order.tolist())
    assert again.numbers_of(kept + ["\x00never"]).tolist() == [kept.index(t) for t in kept] + [-1]
    assert table.numbers_of(everything).tolist() == [table.get(t) for t in everything]


def test_a_saved_index_lists_equal_hashes_by_number(monkeypatch):
    """Kept strings and new ones merged into one index: among equal hashes (here every hash),
    numbers ascend, as a stable sort of the hashes would have them."""
    collide(monkeypatch)
    table = reopened(Strings.of(["香港", "经济", "香港", "澳门"]))
    table.append("经济")
    _, _, hashes, order = table.saved_form(np.array([True, False, True, True, True]), ["主题教育", "香港"])
    assert order.tolist() == [0, 1, 2, 3, 4, 5] and hashes.tolist() == [7] * 6


def test_numbers_of_tells_colliding_hashes_apart(monkeypatch):
    collide(monkeypatch)
    table = reopened(Strings.of(["香港", "经济"]))
    table.append("主题教育")
    assert table.numbers_of(["经济", "澳门", "主题教育", "香港"]).tolist() == [1, -1, 2, 0]
    with pytest.raises(ValueError, match="different number"):
        table.saved_form(np.ones(2, np.bool_))


def test_malformed_rare_fields_are_refused():
    table = FileTable(post_id=lambda doc: "p")
    table["x.md"] = FileEntry(1, 2, "0f" * 16, 0, "p")
    names, columns, _ = table.saved_form()
    assert FileTable(reopened(names), columns, {"0": [None, None, ["ok"], None, None]})["x.md"].warnings == ["ok"]
    for bad in ({"0": [None, None, "warnings", None, None]}, {"1": [None, None, [], None, None]}, {"0": [1]}):
        with pytest.raises(ValueError):
            FileTable(reopened(names), columns, bad)


@given(st.lists(st.lists(st.integers(0, 200_000), max_size=30).map(lambda d: sorted(set(d))), max_size=12))
@settings(max_examples=100, deadline=None)
def test_document_gaps_decode_to_the_documents_term_by_term_and_whole(per_term):
    ptr = np.zeros(len(per_term) + 1, np.int64)
    np.cumsum([len(d) for d in per_term], out=ptr[1:])
    docs = np.array([d for term in per_term for d in term], np.int64)
    gaps = DocGaps.encode(docs, ptr)
    gaps.check(ptr)
    assert [gaps.term(t).tolist() for t, d in enumerate(per_term) if d] == [d for d in per_term if d]
    assert gaps.decode(ptr).tolist() == docs.tolist()
    assert gaps.data.shape[0] <= 4 * docs.shape[0]


def test_a_term_takes_the_width_of_its_largest_gap():
    dense = DocGaps.encode(np.arange(100, 400, 3), np.array([0, 100]))
    assert dense.width.tolist() == [1] and dense.data.shape[0] == 100  # a byte a posting
    late = DocGaps.encode(np.arange(1000, 1300, 3), np.array([0, 100]))
    assert late.width.tolist() == [2] and late.data.shape[0] == 200  # the first document, 1000, needs two
    sparse = DocGaps.encode(np.array([5, 70_000, 70_001]), np.array([0, 3]))
    assert sparse.width.tolist() == [4] and sparse.term(0).tolist() == [5, 70_000, 70_001]


def test_label_lists_survive_a_compaction_renumbered():
    from retrieval.docstore import LabelLists

    lists = LabelLists(["体育", "教育"], np.array([0, 3, 5]), np.array([0, 2, 4, 1, 4], np.int32))
    lists.add("体育", 5)
    lists.add("新闻", 3)
    renumbered = lists.renumbered(np.array([0, -1, 1, 2, -1, 3]))  # documents 1 and 4 are gone
    assert [renumbered.docs(k).tolist() for k in ("体育", "教育", "新闻")] == [[0, 1, 3], [], [2]]


@given(st.lists(st.sampled_from(["体育", "教育", "新闻", "经济", "a", "b"]), max_size=40), st.integers(0, 39))
def test_a_label_table_saves_each_list_as_it_reads_it(adds, saved_after):
    """:meth:`LabelLists.saved_form` (all lists moved and joined at once) against
    :meth:`LabelLists.docs` of each key, with lists saved, loaded again and added to."""
    from retrieval.docstore import LabelLists

    lists = LabelLists()
    for doc, key in enumerate(adds):
        if doc == saved_after:
            lists = LabelLists(*lists.saved_form())
        lists.add(key, doc)
    keys, ptr, docs = lists.saved_form()
    assert keys == list(dict.fromkeys(keys))
    assert sorted(keys) == sorted(set(adds))
    assert [docs[ptr[i]:ptr[i + 1]].tolist() for i in range(len(keys))] == [lists.docs(key).tolist() for key in keys]
    assert [docs[ptr[i]:ptr[i + 1]].tolist() for i in range(len(keys))] == \
        [[doc for doc, k in enumerate(adds) if k == key] for key in keys]
    assert docs.dtype == np.int32 and ptr.dtype == np.int64
