"""The compact index parts: the hashed string table, compressed blocks, packed postings, merges."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrieval import blocks, strings
from retrieval.blocks import BlockStore, DamagedBlock
from retrieval.postings import Segment, merge, pack
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


def test_colliding_hashes_are_told_apart_by_their_bytes(monkeypatch):
    monkeypatch.setattr(strings, "string_hash", lambda data: 7)  # every string collides
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


def test_blocks_read_back_saved_unsaved_and_raw_documents(monkeypatch):
    monkeypatch.setattr(blocks, "BLOCK_BYTES", 200)
    store = BlockStore()
    docs = [f"第{i}篇：".encode() + "新闻联播".encode() * (i % 7) for i in range(50)]
    for data in docs[:30]:
        store.append(data)
    saved = store.unsaved_bytes()
    tables = store.tables()
    store.mark_saved()
    reopened = BlockStore(memoryview(saved), tables["offsets"], tables["block_raw"], tables["block_pos"])
    for data in docs[30:]:
        reopened.append(data)
    assert [reopened[i] for i in range(50)] == docs  # saved blocks, new blocks, raw tail
    assert len(reopened.tables()["block_raw"]) > 2 and len(saved) < sum(map(len, docs[:30]))


def test_a_damaged_block_is_reported_not_returned():
    store = BlockStore()
    store.append("会议纪要".encode() * 50)
    blob = bytearray(store.unsaved_bytes())
    tables = store.tables()
    blob[len(blob) // 2] ^= 0xFF
    with pytest.raises(DamagedBlock):
        BlockStore(bytes(blob), tables["offsets"], tables["block_raw"], tables["block_pos"])[0]


def test_frequencies_past_127_widen_the_packed_type():
    assert pack(np.array([127]), np.array([True])).dtype == np.uint8
    wide = pack(np.array([1, 128, 40000]), np.array([False, True, False]))
    assert wide.dtype == np.uint32 and (wide >> 1).tolist() == [1, 128, 40000] and (wide & 1).tolist() == [0, 1, 0]


postings = st.lists(st.tuples(st.integers(0, 5), st.integers(1, 300), st.booleans()), max_size=12)


@given(st.lists(postings, min_size=1, max_size=4), st.data())
@settings(max_examples=80, deadline=None)
def test_merge_equals_sorting_every_posting(per_doc, data):
    """Segments of consecutive documents merge into what one sort of all postings gives."""
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
            segments.append(Segment.from_postings(terms, docs, pack(tfs, flags), n_terms))
            rows += cols
    live = np.array(data.draw(st.lists(st.booleans(), min_size=doc, max_size=doc)), np.bool_)
    merged = merge(segments, live, n_terms)
    kept = sorted((t, d, f, b) for t, d, f, b in rows if live[d])
    got = [(t, int(d), int(f), bool(b)) for t in range(n_terms) for d, f, b in zip(*merged.postings(t))]
    assert got == kept
