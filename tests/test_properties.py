"""Property tests for everything that takes untrusted text: whatever comes in, the answer is a
value or the documented refusal, never another exception."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.callbacks import MAX_BYTES, CallbackCodec
from bot.render import HTML, Action, render_listing, render_post, render_push
from bot.service import Listing
from bot.store import SubscriberStore
from retrieval import Hit, Post, Query, QueryError, SearchPage
from retrieval.dates import timezone as zone
from retrieval.loader import MalformedPost, ParsedPost, parse_post
from retrieval.phrases import compact, contains_phrase, phrase_test
from retrieval.query import parse_query
from retrieval.summary import query_summary
from retrieval.tokenizer import Tokenizer

from fake_bot_api import parse_html, utf16_len

TZ = zone()
PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: Text as users and files bring it: any code point, with the query language's own characters
#: and Chinese over-represented so that the interesting paths are taken.
SPECIAL = st.sampled_from(list('"“”「」-:~..至到年月日号 ½¼℅²\x00\x1b<>&') + ["since:", "until:", "tag:", "cat:", "date:",
                                                                          "2019", "11", "主题", "教育", "\n"])
TEXT = st.lists(st.one_of(st.characters(), SPECIAL), max_size=60).map("".join)


@PROPERTY
@given(TEXT)
def test_any_text_is_a_query_or_a_query_error(text: str):
    try:
        query = parse_query(text, TZ)
    except QueryError as exc:
        assert exc.code in {"too_long", "bad_date", "empty_range"}
    else:
        assert isinstance(query, Query)


FRONT = st.lists(st.sampled_from(["title: ", "date: ", "tags: ", "- ", "urlname: ", "{", "[", "]", "'", '"', ": ",
                                  "2019-13-45", "2019-11-01 10:00:00", "&a", "*a", "!!python/object ", "\n", "---"]),
                 max_size=25).map("".join)


@PROPERTY
@given(st.one_of(st.binary(max_size=300), st.tuples(FRONT, TEXT).map(lambda p: f"---\n{p[0]}\n---\n{p[1]}".encode("utf-8", "surrogatepass"))))
def test_any_bytes_are_a_post_or_a_skip_reason(data: bytes):
    try:
        parsed = parse_post(data, "x/y.md", TZ)
    except MalformedPost as exc:
        assert exc.reason
    else:
        assert isinstance(parsed, ParsedPost) and isinstance(parsed.post.title, str)


_TOKENIZER = Tokenizer()
LABELS = st.lists(TEXT.filter(str.strip), max_size=8).map(tuple)
POSTS = st.builds(
    lambda title, body, tags, cats, url, days: Post(
        id=f"p{abs(hash(title)) % 1000}", title=title or "无题", date=datetime(2019, 11, 1, tzinfo=timezone.utc) + timedelta(days=days),
        url=url, body=body, path="p.md", tags=tags, categories=cats),
    TEXT, st.lists(TEXT, max_size=40).map("\n".join), LABELS, LABELS,
    st.one_of(st.none(), st.sampled_from(["https://example.com/a?b=1&c=<2>", 'http://x.org/"quoted"'])),
    st.integers(0, 400),
)


def accepted(text: str) -> None:
    """As Telegram would: valid HTML within 4,096 characters."""
    assert utf16_len(parse_html(text)) <= 4096


@PROPERTY
@given(st.lists(POSTS, min_size=1, max_size=5), TEXT)
def test_any_posts_and_query_render_as_telegram_accepts(posts: list[Post], query: str):
    tokens = _TOKENIZER.tokenize(query)
    hits = [Hit(p, 1.0, query_summary(p.body, tokens, {})) for p in posts]
    page = SearchPage(Query(query, words=(query,)), hits, total=len(hits) * 3, offset=0, limit=5, ranked=True,
                      tokens=tuple(tokens))
    message = render_listing(HTML, Listing("search", query or "x", page), "zh")
    accepted(message.text)
    for post in posts:
        accepted(render_post(HTML, post, "en").text)
        accepted(render_push(HTML, post, (query,), "zh").text)


@pytest.fixture(scope="module")
def codec(tmp_path_factory) -> CallbackCodec:
    return CallbackCodec(SubscriberStore(tmp_path_factory.mktemp("codec") / "s.sqlite3"))


@PROPERTY
@given(data=st.one_of(st.text(max_size=80), st.binary(max_size=80).map(lambda b: b.decode("utf-8", "replace")),
                      st.lists(st.sampled_from(["g", "d", "u", "n", "k", "|", "search", "range", "latest", "2", "²",
                                                "教育", ""]), max_size=6).map("|".join)))
def test_any_callback_data_decodes_or_is_refused(codec: CallbackCodec, data: str):
    action = codec.decode(data)
    assert action is None or isinstance(action, Action)
    if action is not None:
        again = codec.encode(action)
        assert len(again.encode()) <= MAX_BYTES and codec.decode(again) == action


PHRASE_TEXT = "新闻ab 1-，"


@given(st.text(PHRASE_TEXT, max_size=30), st.text(PHRASE_TEXT, min_size=1, max_size=5))
@settings(max_examples=500, deadline=None)
def test_the_byte_phrase_test_agrees_with_the_text_one(haystack: str, words: str):
    """The test run over stored texts (UTF-8 bytes) finds a phrase exactly where the one over
    strings does, Latin word boundaries included."""
    text, phrase = compact(haystack), compact(words)
    assert phrase_test(phrase)(text.encode("utf-8")) == contains_phrase(text, phrase)
