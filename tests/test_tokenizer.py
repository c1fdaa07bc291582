"""Tokenization: normalization, search-mode granularity, stop words, and rjieba == jieba."""

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from retrieval.tokenizer import (
    FOLD_BY_ARRAY,
    JiebaSegmenter,
    RjiebaSegmenter,
    Tokenizer,
    _fold_table,
    fold_chars,
    normalize,
)

from conftest import FIXTURES

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "sample"


def test_granularity_case_width_stopwords_numbers():
    tok = Tokenizer(segmenter=JiebaSegmenter())
    assert {"南开", "大学", "南开大学"} <= set(tok.tokenize("南开大学"))
    assert tok.tokenize("主题教育") == ["主题", "教育"]
    assert tok.tokenize("ＰＹＴＨＯＮ and AI") == ["python", "ai"]
    assert "的" not in tok.tokenize("学校的主题教育") and "2019" in tok.tokenize("2019年11月")
    assert tok.tokenize("！？。，、") == []


def _texts() -> list[str]:
    texts = [p.read_text("utf-8") for p in sorted(FIXTURES.rglob("*")) if p.is_file()]
    if CORPUS.is_dir():  # the real sample, when ../shared is there
        texts += [p.read_text("utf-8") for p in sorted(CORPUS.glob("*.md"))[:300]]
    texts += ["Python3.11 与 AI：tv.cctv.com 2019-11-13 12:36，ＡＢＣ全角，emoji 🙂 混排。"]
    return texts


def test_rjieba_yields_jiebas_tokens():
    from retrieval.markup import plain_text

    fast = Tokenizer(segmenter=RjiebaSegmenter())
    reference = Tokenizer(segmenter=JiebaSegmenter())
    for text in _texts():
        for piece in (text, plain_text(text)):
            assert fast.tokenize(piece) == reference.tokenize(piece)


def test_default_segmenter_and_user_dict(tmp_path: Path):
    assert Tokenizer().segmenter.name == "rjieba"
    user_dict = tmp_path / "dict.txt"
    user_dict.write_text("整改落实推进会 50 n\n", "utf-8")
    tok = Tokenizer(user_dict=user_dict)
    assert tok.segmenter.name == "jieba" and "整改落实推进会" in tok.tokenize("召开整改落实推进会")
    assert tok.fingerprint != Tokenizer().fingerprint


def reference_normalize(text: str) -> str:
    """normalize as it was defined: NFKC of the whole text, lower case, simplified, spaces."""
    import unicodedata

    from retrieval.tokenizer import _NON_WORD, simplified_table

    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).lower().translate(simplified_table()))


#: Characters NFKC composes, reorders, expands or folds, beside plain text of both scripts.
NFKC_EDGES = "e\u0301\u0301\u0327a\u030a\u1100\u1161\u11a8\uac00\u00bd\u2460\u3000\uff0c\uff21\u337f\u0344\u0f73ſ\u212b\u2126ﬁ榮國習近平Σσ"


@given(st.text(NFKC_EDGES, max_size=30) | st.text(max_size=30))
@settings(max_examples=1500, deadline=None)
def test_normalize_equals_nfkc_of_the_whole_text(text: str):
    assert normalize(text) == reference_normalize(text)


@given(st.text(NFKC_EDGES + "中文 ab9，", min_size=FOLD_BY_ARRAY - 5, max_size=FOLD_BY_ARRAY + 300)
       | st.text(NFKC_EDGES + "中文 ab9，😀\ud800", min_size=FOLD_BY_ARRAY - 5, max_size=FOLD_BY_ARRAY + 300)
       | st.text(min_size=FOLD_BY_ARRAY, max_size=FOLD_BY_ARRAY + 50))
@settings(max_examples=500, deadline=None)
def test_long_texts_fold_as_each_character_does(text: str):
    """A long text is folded through an array of code points (faster), a short one by
    ``str.translate``: the same character by character, characters past the BMP (😀) and lone
    surrogates (which a Telegram message's JSON can carry) included."""
    assert fold_chars(text) == "".join(_fold_table()[ord(c)] if ord(c) < 0x10000 else c for c in text)
