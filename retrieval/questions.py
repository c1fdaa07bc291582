"""Reading a query as the question a person typed: words that only ask, recency, and the
sentence that answers.

People write ``2019年11月有哪些关于香港的新闻？`` rather than ``香港 since:2019-11-01 until:…``.
The date is taken out by :mod:`retrieval.when`; what is left is cut into words, and the words
that only make it a question (有哪些, 关于, 的, 新闻, 吗…: :data:`FILLER`) are dropped, so the
two queries run alike. 最新/最近/近期 ask for the newest posts first (:data:`RECENCY`). A text
that asks something (it ends with ？/吗/呢 or asks 谁/什么/哪/几/多少…) gets an answer: the
sentence of the top posts that best covers the question's words (:func:`best_answer`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence

from .post import Post
from .summary import Summary, match_spans, strip_dateline
from .tokenizer import Tokenizer, fold_chars

#: Words that only ask or point at "news"; applied to queries, never to posts. (Stop words,
#: which the tokenizer drops everywhere, are not repeated here.)
FILLER = frozenset("""
    有哪些 哪些 有没有 有什么 什么 是什么 为什么 怎么 怎么样 怎样 如何 哪里 在哪 在哪里 哪儿 哪个 哪位 哪家 哪年
    何时 什么时候 多少 几 几个 是谁 谁 是 有 的 了 吗 呢 吧 啊 呀 么 嘛 请问 请 帮 帮我 帮我找 找 找找 查 查查 查找
    搜 搜索 搜一下 看看 看一下 一下 我 我想 想 想要 要 知道 了解 告诉 告诉我 给 给我 关于 有关 相关 方面 报道
    新闻 文章 消息 资讯 信息 内容 情况 事情 事 相关报道 的话 一些 一篇 几篇 篇
""".split())
#: Words that ask for the newest posts first.
RECENCY = frozenset({"最新", "最近", "近期", "近日", "最新的", "新近"})
_ASKS = re.compile(r"谁|什么|哪|几|多少|何时|为什么|为何|怎么|怎样|如何|是否")
_ASKS_AT_END = re.compile(r"(?:[？?]|吗|呢|么)[\s。！!…]*$")
#: "有哪些关于香港的新闻？" asks for posts, not for a fact: the list is the answer.
_ASKS_FOR_POSTS = re.compile(r"(?:新闻|文章|报道|消息|资讯|稿件|新聞|報道|報導|消息)(?:吗|呢)?[\s？?。！!…]*$")
ANSWER_CHARS = 100
#: How many of the top posts an answer is looked for in (the first that shares anything
#: with the question gives it).
ANSWER_POSTS = 3
#: What a pair of characters of the post's title counts for: the subject, not the answer.
TITLE_WEIGHT = 0.0
#: What a single shared character counts for, against a shared pair.
CHAR_WEIGHT = 0.3


def is_question(text: str) -> bool:
    """Whether the text asks something (rather than naming a topic or asking for posts)."""
    if _ASKS_FOR_POSTS.search(text):
        return False
    return bool(_ASKS_AT_END.search(text) or _ASKS.search(text))


@dataclass(frozen=True, slots=True)
class Reading:
    """What a query's plain words come to: the words that rank, and whether newest first."""

    words: tuple[str, ...]
    recent: bool


def read_words(words: Sequence[str], tokenizer: Tokenizer) -> Reading:
    """Drop the words that only ask (and note recency); words that are nothing but filler are
    kept as typed (``/search 新闻`` means the word)."""
    kept: list[str] = []
    recent = False
    for word in words:
        parts = tokenizer.words(word)
        asks = [p in FILLER or p in RECENCY for p in parts]
        recent = recent or any(p in RECENCY for p in parts)
        if not any(asks):
            kept.append(word)  # nothing to drop: the word as typed
        elif not all(asks):
            kept.append(" ".join(p for p, a in zip(parts, asks) if not a))
        elif not recent:
            kept.append(word)
    return Reading(tuple(kept), recent)


@dataclass(frozen=True, slots=True)
class Answer:
    """The sentence that best answers a question (at most :data:`ANSWER_CHARS` characters,
    with the question's words marked) and the post it comes from."""

    text: Summary
    post: Post


def _window(sentence: str, spans: list[tuple[int, int]], weights: list[float], size: int) -> int:
    """Where the ``size``-character window that covers the most weight starts."""
    if len(sentence) <= size:
        return 0
    best, best_at = -1.0, 0
    for start in sorted({max(0, min(s - size // 3, len(sentence) - size)) for s, _ in spans} | {0}):
        covered = sum(w for (s, e), w in zip(spans, weights) if s >= start and e <= start + size)
        if covered > best:
            best, best_at = covered, start
    return best_at


_ANSWER_SENTENCE = re.compile(r"(?<=[。！？!?])|\n+")


def _grams(text: str) -> set[str]:
    """The characters and character pairs of ``text`` as compared (folded), none across a space."""
    folded = fold_chars(text)
    pairs = {folded[i : i + 2] for i in range(len(folded) - 1) if " " not in folded[i : i + 2]}
    return pairs | (set(folded) - {" "})


def best_answer(posts: Sequence[Post], words: str, tokens: Sequence[str]) -> Answer | None:
    """The sentence that shares the most with the question's ``words`` — characters and
    character pairs, each weighted by how few sentences of its post have it (the name a whole
    article is about says little about which of its sentences answers) — in the first of
    ``posts`` (in rank order) that shares anything; cut to :data:`ANSWER_CHARS` characters
    around what it shares. None when no sentence shares anything.

    Measured on the CMRC 2018 trial set (``benchmarks/bench_questions.py``): sentences rather
    than clause windows, and only the first post with a match, answered the most questions."""
    wanted = _grams(words)
    if not wanted:
        return None
    best: tuple[float, str, Post, set[str]] | None = None
    for post in posts[:ANSWER_POSTS]:
        sentences = [x.strip() for x in _ANSWER_SENTENCE.split(strip_dateline(post.body)) if x and x.strip()]
        grams = [_grams(x) & wanted for x in sentences]
        count = {g: sum(g in have for have in grams) for g in wanted}
        subject = _grams(post.title)
        weight = {g: math.log((len(sentences) + 1) / (n + 0.5)) * (TITLE_WEIGHT if g in subject else 1.0)
                  * (1.0 if len(g) == 2 else CHAR_WEIGHT) for g, n in count.items() if n}
        for sentence, have in zip(sentences, grams):
            score = math.fsum(weight[g] for g in have)  # exact: no dependence on the set's order
            if have and (best is None or score > best[0]):
                best = (score, sentence, post, have)
        if best is not None:
            break
    if best is None:
        return None
    _, sentence, post, have = best
    marks = {t for t in tokens if t}
    spans = sorted((i, i + 2) for i in range(len(sentence) - 1) if fold_chars(sentence[i : i + 2]) in have)
    spans = spans or [(i, i + 1) for i, ch in enumerate(fold_chars(sentence)) if ch in have]
    start = _window(sentence, spans, [1.0] * len(spans), ANSWER_CHARS)
    piece = sentence[start : start + ANSWER_CHARS]
    if start > 0:
        piece = "…" + piece[1:]
    if start + ANSWER_CHARS < len(sentence):
        piece = piece[:-1] + "…"
    return Answer(Summary(piece, match_spans(piece, marks)), post)
