"""The C extension and its Python twins: the same results for any input (the Python is the
reference), a clear error for a bad argument, and a switch that turns the extension off."""

import contextlib
import os
import re
import subprocess
import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrieval import Archive, analyze, gaps, index, markup, phrases, postings, scan, tokenizer
from retrieval.analyze import count_terms
from retrieval.index import InvertedIndex
from retrieval.gaps import DocGaps
from retrieval.postings import Segment, grouped_by_term
from retrieval.strings import Strings
from retrieval.native import native
from retrieval.phrases import compact, compact_general
from retrieval.tokenizer import DEPENDS, FOLD_BY_ARRAY, _context_free, _normalize_codes, filter_tokens, fold_chars, normalize, \
    normalize_general

REPO = Path(__file__).resolve().parents[1]
#: Characters whose normalization depends on their neighbours (marks NFKC composes or
#: reorders, Hangul jamo, Kannada and Tamil vowel signs that compose though not marked as
#: combining, the capital sigma), beside characters NFKC expands or folds, traditional and
#: simplified Chinese, astral characters (a Deseret capital, which lower-cases) and spaces.
EDGES = ("e\u0301\u0301\u0327a\u030a\u1100\u1161\u11a8\uac00\u0cbf\u0cd5\u0b92\u0bd7\u0bbe\u00bd\u2460"
         "\u3000\uff0c\uff21\u337f\u0344\u0f73ſ\u212b\u2126ﬁ\u0130榮國習近平中文ΣσςΑ\U00010400😀 \t\n_,.-9aZ")
TEXTS = st.text(EDGES, max_size=60) | st.text(max_size=60)

needs_native = pytest.mark.skipif(native is None, reason="the C extension is not built")


@contextlib.contextmanager
def pure_python() -> Iterator[None]:
    """Every caller of the extension on its Python way, for the block."""
    modules = (tokenizer, phrases, analyze, index, postings, gaps, markup, scan)
    saved = [module.native for module in modules]
    for module in modules:
        module.native = None
    try:
        yield
    finally:
        for module, was in zip(modules, saved):
            module.native = was


def test_the_install_builds_the_extension():
    """The README's install compiles it (every supported machine has a C compiler and
    Python's headers); without it a 50,000-post build is 1.3-1.65x slower, so a missing one must show."""
    if os.environ.get("ARCHIVE_BOT_PURE_PYTHON"):
        pytest.skip("turned off by ARCHIVE_BOT_PURE_PYTHON")
    assert native is not None


def test_a_variable_turns_the_extension_off():
    env = dict(os.environ, ARCHIVE_BOT_PURE_PYTHON="1", PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", "from retrieval.native import native; print(native)"],
                         env=env, capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout == "None\n"


@needs_native
@given(TEXTS)
@settings(max_examples=1500, deadline=None)
def test_normalize_in_c_equals_the_reference(text: str):
    with pure_python():
        expected = normalize(text)
    assert normalize(text) == expected == normalize_general(text)


@needs_native
def test_every_character_normalizes_alone_as_the_table_says():
    """Each BMP character in turn, in C and in Python (the C path returns None for one that
    DEPENDS, and the Python path answers)."""
    codes = _normalize_codes()
    for code in range(0x10000):
        ch = chr(code)
        expected = normalize_general(ch)
        assert normalize(ch) == expected, hex(code)
        if codes[code] != DEPENDS:
            assert expected == chr(int(codes[code])), hex(code)


def test_characters_that_compose_with_the_one_before_are_never_looked_up_alone():
    """Canonical composition joins a starter with a following character that is the second of
    some character's canonical decomposition (the NFKC_QC=Maybe set): each such character must
    be excluded from the per-character table, or a text holding it would normalize wrongly."""
    seconds = set()
    for code in range(0x110000):
        parts = unicodedata.decomposition(chr(code)).split()
        if len(parts) == 2 and not parts[0].startswith("<"):
            seconds.add(int(parts[1], 16))
    seconds |= set(range(0x1161, 0x1176)) | set(range(0x11A8, 0x11C3))  # Hangul vowels and finals
    assert len(seconds) > 100
    assert [hex(c) for c in sorted(seconds) if c < 0x10000 and _context_free(chr(c))] == []


@needs_native
@given(TEXTS | st.text(EDGES + "\ud800\udfff", min_size=FOLD_BY_ARRAY, max_size=FOLD_BY_ARRAY + 200))
@settings(max_examples=800, deadline=None)
def test_fold_and_compact_in_c_equal_the_reference(text: str):
    """Short texts and long ones: without the extension, fold_chars takes str.translate below
    FOLD_BY_ARRAY characters and an array of code points from there on; C must equal both."""
    with pure_python():
        folded, compacted = fold_chars(text), compact(text)
    assert fold_chars(text) == folded
    assert compact(text) == compacted == compact_general(text)


STOP = frozenset({"的", "了", "a"})
#: Texts a slot holds itself (up to seven bytes) and texts it refers to, of each width; ``ab``
#: and ``扡`` (U+6261), ``abcd`` and ``扡摣`` have the same bytes in different widths.
TOKENS = st.lists(st.sampled_from(["的", "了", "a", "中国", "教育", "ab", " ", "\u3000", "\t \n", "", "习", "😀",
                                   "扡", "abcd", "\u6261\u6463", "abcdefg", "abcdefgh", "中国人", "中国人民",
                                   "😀a", "é", "\xe9t\xe9"]),
                  max_size=40)


@needs_native
@given(st.lists(st.tuples(TOKENS, TOKENS), max_size=6))
@settings(max_examples=500, deadline=None)
def test_filtering_and_counting_in_c_equal_the_reference(posts: list[tuple[list[str], list[str]]]):
    """Several posts in turn, numbering their terms in one shared table, as a worker does; C
    counts the tokens its filter keeps, which are the reference filter's."""
    terms, new_c, numbers_py, new_py = native.Terms(STOP), [], {}, []
    for title, body in posts:
        title = [token.encode().decode() for token in title]  # (new objects, as the segmenter gives)
        with pure_python():
            kept_py = (filter_tokens(title, STOP), filter_tokens(body, STOP))
            counted_py = count_terms(title, body, numbers_py, new_py, STOP)
        assert (filter_tokens(title, STOP), filter_tokens(body, STOP)) == kept_py
        assert native.count_terms(title, body, terms, new_c) == counted_py
        assert counted_py[3] == len(kept_py[0]) + len(kept_py[1])
    assert (len(terms), new_c) == (len(numbers_py), new_py)


@needs_native
def test_counts_come_back_as_int32_in_first_seen_order():
    terms, new = native.Terms(STOP), []
    assert native.count_terms(["教育"], [], terms, new)[0] == np.int32(0).tobytes()
    new.clear()
    ids, tfs, titled, length = native.count_terms(["中国", "的", "教育"], ["教育", " ", "历史", "中国", "的", "教育"],
                                                  terms, new)
    assert np.frombuffer(ids, np.int32).tolist() == [1, 0, 2]
    assert np.frombuffer(tfs, np.int32).tolist() == [2, 3, 1]
    assert (titled, length, new, len(terms)) == (2, 6, ["中国", "历史"], 3)


@needs_native
def test_a_worker_numbers_many_terms_with_their_texts_apart():
    """Past the table's first size (it grows as it fills), and with texts of each width, every
    term keeps its number and equal texts that are different objects are one term."""
    terms, new = native.Terms(frozenset({"停"})), []
    words = [f"词{i}" for i in range(5000)] + [f"w{i}" for i in range(3000)] + ["😀x", "停"]
    ids, tfs, titled, length = native.count_terms(words[:10], words + words, terms, new)
    assert np.frombuffer(ids, np.int32).tolist() == list(range(len(words) - 1))
    assert np.frombuffer(tfs, np.int32).tolist() == [3] * 10 + [2] * (len(words) - 11)  # the title's ten thrice
    assert (titled, length) == (10, 10 + 2 * len(words) - 2)  # the stop word twice left out
    ids, _, _, _ = native.count_terms([], [w.encode().decode() for w in reversed(words)], terms, new)
    assert np.frombuffer(ids, np.int32).tolist() == list(range(len(words) - 2, -1, -1))
    assert new == words[:-1] and len(terms) == len(words) - 1


#: Every line break str.splitlines() knows, the spaces runs are made of, other white space.
#: (Texts of each width: only "ab" and the C0 and Latin-1 ones make one of one byte a character,
#: 新 of two, 😀 of four.)
LINES = "ab新😀 \t\u3000\xa0\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\u2028\u2029\u2003"


@needs_native
@given(st.text(LINES, max_size=40) | st.text(max_size=30))
@settings(max_examples=1500, deadline=None)
def test_tidy_lines_in_c_and_python_agree(text: str):
    with pure_python():
        python = markup.tidy_lines(text)
    assert markup.tidy_lines(text) == python
    assert python == re.sub(r"\n\s*\n+", "\n", "\n".join(markup._SPACES.sub(" ", line).strip()
                                                           for line in text.splitlines())).strip()


@needs_native
@given(st.text(max_size=40) | st.text("ab新[]()!:/.-*_`~{%<>#\x00\x7f\x80", max_size=40))
@settings(max_examples=1500, deadline=None)
def test_ascii_mask_in_c_and_python_agree(text: str):
    with pure_python():
        python = markup.ascii_mask(text)
    assert markup.ascii_mask(text) == python
    assert python == sum(1 << code for code in range(128) if chr(code) in text)


@needs_native
def test_bad_arguments_raise_clear_errors():
    table = _normalize_codes()
    with pytest.raises(TypeError, match="needs a str"):
        native.normalize(b"bytes", table)
    with pytest.raises(ValueError, match="65536"):
        native.fold("text", table[:100])
    with pytest.raises(TypeError, match="a list and a set"):
        native.filter_tokens(("a",), STOP)
    with pytest.raises(TypeError, match="str tokens"):
        native.filter_tokens(["a", 1], STOP)
    with pytest.raises(TypeError, match="two lists, a Terms and a list"):
        native.count_terms([], [], {}, [])
    with pytest.raises(TypeError, match="two lists, a Terms and a list"):
        native.count_terms([], [], native.Terms(STOP), [], STOP)
    with pytest.raises(TypeError, match="str tokens"):
        native.count_terms(["a"], [("b",)], native.Terms(STOP), [])
    with pytest.raises(TypeError, match="the set of stop words"):
        native.Terms(["的"])
    with pytest.raises(TypeError, match="str stop words"):
        native.Terms({"的", 1})
    with pytest.raises(TypeError, match="a text and a str of space characters"):
        native.tidy_lines(b"a", " ")
    with pytest.raises(ValueError, match="at most 8 space characters"):
        native.tidy_lines("a", " " * 9)
    with pytest.raises(TypeError, match="takes one str"):
        native.front_lines(b"title: x")
    with pytest.raises(TypeError, match="takes one str"):
        native.ascii_mask(b"text")


@needs_native
def test_reading_ahead_opens_each_file_it_can_and_names_what_it_cannot_take(tmp_path: Path):
    """``will_need`` only hints the kernel, so what it shows is the files it opened: every
    readable one, none that is missing; a path given as text or holding NUL is an error."""
    for name in ("a.md", "b.md"):
        (tmp_path / name).write_text("---\ntitle: t\n---\nbody\n", "utf-8")
    paths = [os.fsencode(tmp_path / name) for name in ("a.md", "missing.md", "b.md")]
    assert native.will_need(paths) == 2
    assert native.will_need([]) == 0
    with pytest.raises(TypeError, match="bytes without NUL"):
        native.will_need([str(tmp_path / "a.md")])
    with pytest.raises(TypeError, match="bytes without NUL"):
        native.will_need([paths[0] + b"\0x"])


@needs_native
def test_statting_ahead_walks_what_a_scan_lists_and_no_link(tmp_path: Path):
    """``stat_tree`` only warms the kernel's caches, so what it shows is the entries it stat-ed:
    every one but those under a skipped first character, and nothing a link leads to (a link
    back to the root is stat-ed itself, not walked)."""
    for rel in ("a.md", "sub/b.md", "sub/deeper/c.md", "sub/img.png", "_drafts/d.md", ".git/objects/x"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x", "utf-8")
    (tmp_path / "loop").symlink_to(tmp_path, target_is_directory=True)
    skip = "".join(prefix[0] for prefix in scan.HIDDEN_PREFIXES).encode()
    assert native.stat_tree(os.fsencode(tmp_path), skip) == 7  # a.md, sub, sub/b.md, sub/deeper(/c.md), sub/img.png, loop
    assert native.stat_tree(os.fsencode(tmp_path), b"") == 12  # and _drafts(/d.md), .git(/objects(/x))
    assert native.stat_tree(os.fsencode(tmp_path / "missing"), skip) == 0
    with pytest.raises(TypeError, match="two bytes"):
        native.stat_tree(str(tmp_path), skip)
    with pytest.raises(ValueError, match="NUL"):
        native.stat_tree(os.fsencode(tmp_path) + b"\0x", skip)

def listed(state: "scan._Dir | None") -> tuple | None:
    """What a directory listing says, comparable."""
    if state is None:
        return None
    return state.mtime_ns, state.subdirs, list(state.files.items()), state.racy


#: File names a directory may hold: post suffixes in any case, temporary and hidden ones,
#: other suffixes, Chinese, a Kelvin sign (whose lower case is an ASCII k: ``.mar\u212adown``
#: is a post name), and bytes that are not UTF-8.
NAME_PARTS = st.lists(st.sampled_from(["a", "主题", ".md", ".MD", ".Markdown", ".txt", ".TxT", ".png", "~", "%",
                                        "_", ".", "mar\u212adown", "K", "\u0130", "\udcff", "-"]), min_size=1, max_size=5)


@needs_native
def test_the_c_listing_finds_what_the_python_listing_does(tmp_path: Path):
    """``list_posts`` (the C twin of ``ContentScanner._list_python``) on a directory with one
    of each kind of entry: post files by suffix in any case and a Kelvin sign, temporary, hidden
    and other files, a FIFO with a post's name, links to a post, a directory and nowhere,
    a directory and a file whose names are not UTF-8, and a Chinese name."""
    root = os.fsencode(tmp_path)
    for name in ("a.md", "B.MARKDOWN", "c.TxT", "d.md~", "e.md%", "主题.md~", "f.png", "_draft.md", ".hidden.md", "主题.md",
                 "x.mar\u212adown", "notes"):
        (tmp_path / name).write_text("---\ntitle: t\n---\n", "utf-8")
    for name in ("sub", "_skipped", "中文"):
        (tmp_path / name).mkdir()
    os.mkfifo(tmp_path / "pipe.md")
    (tmp_path / "to-a.md").symlink_to(tmp_path / "a.md")
    (tmp_path / "to-sub").symlink_to(tmp_path / "sub", target_is_directory=True)
    (tmp_path / "nowhere.md").symlink_to(tmp_path / "missing.md")
    with open(os.path.join(root, b"bad-\xff.md"), "wb") as fh:
        fh.write(b"x")
    os.mkdir(os.path.join(root, b"dir-\xfe"))
    python = scan.ContentScanner._list_python(str(tmp_path), 123)
    assert listed(scan.ContentScanner._list(str(tmp_path), 123)) == listed(python)
    assert sorted(name for name, _ in python.files.items()) == [
        "B.MARKDOWN", "a.md", "bad-\\xff.md", "c.TxT", "dir-\\xfe/", "to-a.md", "x.mar\u212adown", "主题.md"]
    assert python.subdirs == [("sub", False), ("to-sub", True), ("中文", False)]
    assert scan.ContentScanner._list(str(tmp_path / "missing"), 0) is None


@needs_native
@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(NAME_PARTS, st.sampled_from(["file", "dir", "link"])), max_size=8))
def test_the_c_listing_agrees_with_the_python_on_any_names(tmp_path_factory, entries):
    """Any names (joined from :data:`NAME_PARTS`), of files, directories and links to files."""
    folder = os.fsencode(tmp_path_factory.mktemp("listing"))
    for parts, kind in entries:
        name = os.fsencode("".join(parts))
        path = os.path.join(folder, name)
        if os.path.lexists(path) or name in (b".", b".."):
            continue
        if kind == "dir":
            os.mkdir(path)
        elif kind == "link":
            os.symlink(os.path.join(folder, b"target.txt"), path)
        else:
            with open(path, "wb") as fh:
                fh.write(b"x" * len(name))
    with open(os.path.join(folder, b"target.txt"), "wb") as fh:
        fh.write(b"target")
    path = os.fsdecode(folder)
    assert listed(scan.ContentScanner._list(path, 5)) == listed(scan.ContentScanner._list_python(path, 5))


@needs_native
def test_list_posts_says_what_is_wrong_with_its_arguments(tmp_path: Path):
    args = (os.fsencode(tmp_path), scan._SKIP, scan._SUFFIXES, scan._TEMPORARY, scan.is_post_name)
    assert native.list_posts(*args)[0] == []
    with pytest.raises(TypeError, match="takes bytes"):
        native.list_posts(str(tmp_path), *args[1:])
    with pytest.raises(TypeError, match="suffixes must be bytes"):
        native.list_posts(args[0], args[1], (".md",), *args[3:])
    with pytest.raises(ValueError, match="NUL"):
        native.list_posts(args[0] + b"\0x", *args[1:])
    with pytest.raises(FileNotFoundError):
        native.list_posts(os.fsencode(tmp_path / "missing"), *args[1:])


WORDS = [f"w{i}" for i in range(8)]
#: Postings (document, word, frequency, in title); frequencies past 255 and 65,535 make the
#: segment store them in two and four bytes, documents far apart gaps of two and four bytes.
POSTINGS = st.lists(st.tuples(st.integers(0, 1 << 17) | st.integers(0, 40), st.integers(0, len(WORDS) - 1),
                              st.integers(1, 9) | st.integers(1, 70_000), st.booleans()),
                    max_size=80, unique_by=lambda p: (p[0], p[1]))


def segment(postings: list[tuple[int, int, int, bool]]) -> Segment:
    postings = sorted(postings)
    column = lambda i, kind: np.array([p[i] for p in postings], kind)  # noqa: E731
    return Segment.from_postings(column(1, np.int64), column(0, np.int32), column(2, np.int64), column(3, np.bool_),
                                 len(WORDS))


@needs_native
@given(POSTINGS, st.integers(0, 1 << 17), st.sets(st.integers(0, 79)),
       st.lists(st.lists(st.sampled_from([*WORDS, "absent"]), max_size=5), min_size=1, max_size=4))
@settings(max_examples=300, deadline=None)
def test_scores_in_c_equal_the_reference_bit_for_bit(postings, split, dead, queries):
    """A main and a delta segment (documents below and from ``split``), dead documents (those
    of the postings numbered in ``dead``), repeated query words: documents, scores and title
    idf equal to the last bit."""
    n_docs = max([p[0] for p in postings], default=0) + 1
    lengths = np.random.default_rng(len(postings)).integers(1, 400, n_docs).astype(np.int32)
    live = np.ones(n_docs, np.bool_)
    live[[postings[i][0] for i in dead if i < len(postings)]] = False
    main = segment([p for p in postings if p[0] < split])
    built = InvertedIndex(Strings.of(WORDS), main, segment([p for p in postings if p[0] >= split]), lengths, live,
                          main_df=main.doc_frequencies(len(WORDS), live))
    for words in queries:
        for titles in (True, False):
            same_scores(built, words, titles)


def same_scores(built: InvertedIndex, words: list[str], titles: bool) -> None:
    with pure_python():
        expected = built.score(words, titles)
    got = built.score(words, titles)
    assert got.docs.tolist() == expected.docs.tolist()
    assert got.scores.tobytes() == expected.scores.tobytes()
    assert (got.title_idf is None) == (expected.title_idf is None) == (not titles)
    assert titles is False or got.title_idf.tobytes() == expected.title_idf.tobytes()
    assert got.query_idf == expected.query_idf


@needs_native
def test_a_documents_scores_are_summed_in_the_querys_order():
    """Floating-point sums of three or more terms depend on their order: over a thousand
    documents holding four words each, some sums would differ in the last bit if C summed
    them in another order than the reference."""
    rng = np.random.default_rng(4)
    postings = [(doc, word, int(rng.integers(1, 30)), bool(rng.integers(0, 2))) for doc in range(1000)
                for word in range(4)]
    lengths = rng.integers(1, 400, 1000).astype(np.int32)
    built = InvertedIndex(Strings.of(WORDS), segment(postings), None, lengths, np.ones(1000, np.bool_))
    same_scores(built, ["w0", "w1", "w2", "w3"], True)
    same_scores(built, ["w3", "w1", "w1", "w0"], True)


@needs_native
def test_postings_past_the_last_document_are_damage_either_way():
    postings = [(3, 0, 1, False), (7, 0, 2, True), (9, 1, 1, False)]
    short = InvertedIndex(Strings.of(WORDS), segment(postings), None, np.full(8, 10, np.int32), np.ones(8, np.bool_))
    with pure_python(), pytest.raises(ValueError, match="past the last"):
        short.score(["w1", "w0"])
    with pytest.raises(ValueError, match="past the last"):
        short.score(["w1", "w0"])
    with pytest.raises(ValueError, match="past the last"):
        short.score(["w1"])
    assert short.score(["w0"]).docs.tolist() == [3, 7]


@needs_native
def test_scoring_rejects_arrays_of_the_wrong_kind():
    gaps, width, tfs, titles, first = segment([(3, 0, 1, False)]).stored(0)
    norms, live, out = np.ones(8), np.ones(8, np.bool_), np.zeros(1)
    docs = np.zeros(1, np.int64)
    with pytest.raises(TypeError, match="norms has the wrong item type"):
        native.score_lists(((gaps, width, tfs, titles, first, 1.0, 1),), norms.astype(np.float32), 2.5, live, docs, out, out)
    with pytest.raises(TypeError, match="tuple"):
        native.score_lists(([gaps, width, tfs, titles, first, 1.0, 1],), norms, 2.5, live, docs, out, out)
    with pytest.raises(ValueError, match="bad width"):
        native.score_lists(((gaps, 3, tfs, titles, first, 1.0, 1),), norms, 2.5, live, docs, out, out)
    with pytest.raises(ValueError, match="fewer live flags than documents, or outputs than postings"):
        native.score_lists(((gaps, width, tfs, titles, first, 1.0, 1),), norms, 2.5, live, docs[:0], out, out)
    assert native.score_lists(((gaps, width, tfs, titles, first, 1.0, 1),), norms, 2.5, live, docs, out, None) == 1
    assert docs.tolist() == [3] and out.tolist() == [2.5 / 2.0]


def term_starts(terms: np.ndarray, n_terms: int) -> np.ndarray:
    ptr = np.zeros(n_terms + 1, np.int64)
    np.cumsum(np.bincount(terms, minlength=n_terms), out=ptr[1:])
    return ptr


@needs_native
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(-2**31, 2**31 - 1), st.booleans()), max_size=300),
       st.integers(0, 3))
@settings(max_examples=400, deadline=None)
def test_grouping_by_term_in_c_equals_a_stable_argsort(rows: list[tuple[int, int, bool]], unused: int):
    terms = np.array([t for t, _, _ in rows], np.int32)
    values = np.array([v for _, v, _ in rows], np.int64)
    columns = (values, values.astype(np.int32), (values & 0xFFFF).astype(np.uint16), np.array([f for *_, f in rows], np.bool_))
    ptr = term_starts(terms, (int(terms.max()) + 1 if rows else 0) + unused)
    grouped = grouped_by_term(terms, ptr, *columns)
    order = np.argsort(terms, kind="stable")
    assert [g.dtype for g in grouped] == [c.dtype for c in columns]
    assert [g.tolist() for g in grouped] == [c[order].tolist() for c in columns]
    with pure_python():
        assert [g.tolist() for g in postings.grouped_by_term(terms, ptr, *columns)] == [g.tolist() for g in grouped]


@needs_native
def test_grouping_rejects_terms_its_starts_do_not_count():
    terms = np.array([2, 0, 2, 1], np.int32)
    docs = np.array([10, 11, 12, 13], np.int32)
    ptr, out = term_starts(terms, 3), np.zeros(4, np.int32)
    native.group_by_term(terms, ptr, (docs,), (out,))
    assert out.tolist() == [11, 13, 10, 12]
    with pytest.raises(ValueError, match="term 3 at 1 is outside ptr"):
        native.group_by_term(np.array([2, 3, 2, 1], np.int32), ptr, (docs,), (out,))
    with pytest.raises(ValueError, match="term 2 at 3 is outside ptr, or over its count"):
        native.group_by_term(np.array([2, 0, 2, 2], np.int32), ptr, (docs,), (out,))
    with pytest.raises(ValueError, match="term -1 at 0"):
        native.group_by_term(np.array([-1, 0, 2, 1], np.int32), ptr, (docs,), (out,))
    with pytest.raises(ValueError, match="a column is not as long as terms, or its output short"):
        native.group_by_term(terms, ptr, (docs,), (out[:3],))
    with pytest.raises(ValueError, match="a column is not as long as terms"):
        native.group_by_term(terms, ptr, (docs[:3],), (out,))
    with pytest.raises(ValueError, match="ptr does not span the postings in ascending rows"):
        native.group_by_term(terms[:3], ptr, (docs[:3],), (out,))
    with pytest.raises(ValueError, match="group_by_term\\(\\): ptr does not span the postings in ascending rows"):
        native.group_by_term(terms, np.array([0, 9, 2, 4], np.int64), (docs,), (out,))  # past the end, then back
    with pytest.raises(TypeError, match="terms has the wrong item type"):
        native.group_by_term(terms.astype(np.int64), ptr, (docs,), (out,))
    with pytest.raises(TypeError, match="a grouped column has the wrong item type"):
        native.group_by_term(terms, ptr, (docs,), (out.astype(np.int64),))
    with pytest.raises(TypeError, match="two tuples of as many arrays"):
        native.group_by_term(terms, ptr, (docs,), ())
    with pytest.raises(ValueError, match="too many columns"):
        native.group_by_term(terms, ptr, (docs,) * 5, (out,) * 5)


#: Each term's documents: small gaps, gaps of two bytes and of four, and empty terms.
TERM_DOCS = st.lists(st.sets(st.integers(0, 300) | st.integers(0, 70_000) | st.integers(0, (1 << 31) - 1), max_size=12),
                     max_size=10)


def grouped_docs(term_docs: list[set[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Documents grouped by term, each term's ascending, and the terms' row pointers."""
    ptr = np.zeros(len(term_docs) + 1, np.int64)
    np.cumsum([len(docs) for docs in term_docs], out=ptr[1:])
    return np.array([doc for docs in term_docs for doc in sorted(docs)], np.int32), ptr


@needs_native
@given(TERM_DOCS)
@settings(max_examples=500, deadline=None)
def test_gaps_in_c_equal_the_reference_byte_for_byte(term_docs: list[set[int]]):
    docs, ptr = grouped_docs(term_docs)
    encoded, reference = DocGaps.encode(docs, ptr), DocGaps.encode_arrays(docs, ptr)
    assert encoded.data.tobytes() == reference.data.tobytes()
    assert encoded.start.tolist() == reference.start.tolist()
    assert encoded.width.tolist() == reference.width.tolist()
    decoded = encoded.decode(ptr)
    assert decoded.dtype == np.int32 and decoded.tolist() == docs.tolist()
    assert reference.decode_arrays(ptr).tolist() == docs.tolist()
    with pure_python():
        assert gaps.DocGaps.encode(docs, ptr).data.tobytes() == reference.data.tobytes()
        assert encoded.decode(ptr).tolist() == docs.tolist()


@needs_native
def test_gaps_reject_documents_out_of_order_and_layouts_that_disagree():
    docs, ptr = grouped_docs([{3, 300}, set(), {1 << 20}])
    encoded = DocGaps.encode(docs, ptr)
    assert encoded.width.tolist() == [2, 1, 4] and encoded.start.tolist() == [0, 4, 4, 8]
    assert encoded.data.tolist() == [3, 0, 41, 1, 0, 0, 16, 0]
    width, start = np.empty(3, np.uint8), np.empty(4, np.int64)
    with pytest.raises(ValueError, match="the documents of term 0 do not ascend"):
        native.gap_widths(np.array([300, 3, 5], np.int32), ptr, width, start)
    with pytest.raises(ValueError, match="the documents of term 0 do not ascend"):
        native.gap_widths(np.array([3, 3, 5], np.int32), ptr, width, start)
    with pytest.raises(ValueError, match="gap_widths\\(\\): ptr does not span the postings in ascending rows"):
        native.gap_widths(docs, np.array([0, 9, 1, 3], np.int64), width, start)  # past the end, then back
    with pytest.raises(ValueError, match="write_gaps\\(\\): ptr does not span"):
        native.write_gaps(docs[:2], ptr, encoded.start, encoded.width, np.empty(8, np.uint8))
    with pytest.raises(ValueError, match="a gap of term 0 does not fit its width"):
        native.write_gaps(np.array([3, 70_000, 5], np.int32), ptr, encoded.start, encoded.width, np.empty(8, np.uint8))
    with pytest.raises(ValueError, match="decode_gaps\\(\\): the gaps disagree with the postings"):
        native.decode_gaps(encoded.data[:7], encoded.start, encoded.width, ptr, np.empty(3, np.int32))
    with pytest.raises(ValueError, match="the gaps disagree"):
        native.decode_gaps(encoded.data, encoded.start, np.array([2, 1, 3], np.uint8), ptr, np.empty(3, np.int32))
    with pytest.raises(ValueError, match="docs_out is short"):
        native.decode_gaps(encoded.data, encoded.start, encoded.width, ptr, np.empty(2, np.int32))
    with pytest.raises(TypeError, match="docs_out has the wrong item type"):
        native.decode_gaps(encoded.data, encoded.start, encoded.width, ptr, np.empty(3, np.int64))


@needs_native
def test_an_archive_built_either_way_is_the_same(content: Path, tmp_path: Path):
    with pure_python():
        slow = Archive.open(content, tmp_path / "py", settle_seconds=0, sync=False)
    fast = Archive.open(content, tmp_path / "c", settle_seconds=0, sync=False)
    ids = sorted(fast.post_ids())
    assert ids == sorted(slow.post_ids()) and len(ids) > 5
    with pure_python():
        tokens = {post_id: slow.doc_tokens(slow.get(post_id)) for post_id in ids}
    assert {post_id: fast.doc_tokens(fast.get(post_id)) for post_id in ids} == tokens
    for query in ("主题教育", "南开大学 -历史", '"立德树人"'):
        assert [(h.post.id, h.score) for h in fast.search(query).hits] == \
               [(h.post.id, h.score) for h in slow.search(query).hits]
