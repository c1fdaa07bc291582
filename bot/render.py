"""Turning service results into messages: one code path, two formats (Telegram HTML, plain text).

Buttons are returned as data (label + :class:`Action`); the Telegram layer encodes them as
callback data, the terminal chat as numbered choices.
"""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass
from typing import Protocol

from retrieval import Answer, Hit, Post, Summary, describe_dates, post_summary

from .service import Listing, Problem
from .store import Channel, Subscription
from .texts import t

MESSAGE_LIMIT = 4096
TITLE_CHARS = 200
DETAIL_CHARS = 400
_TAG = re.compile(r"<[^>]+>")
#: C0 and C1 control characters other than tab and line feed: a title or file name holding
#: ``ESC]0;…BEL`` or ``ESC[2J`` would retitle or clear the reader's terminal.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


#: Lone surrogates: Telegram's JSON can carry them (``"\ud800"``), no encoding can.
_SURROGATES = re.compile(r"[\ud800-\udfff]")


def encodable(s: str) -> str:
    """Text every encoding accepts: lone surrogates become U+FFFD."""
    return _SURROGATES.sub("\ufffd", s)


def printable(s: str) -> str:
    """Text safe to write to a terminal: control characters removed."""
    return _CONTROLS.sub("", encodable(s))


class Format(Protocol):
    """How text, emphasis and links are written in one output format."""

    def text(self, s: str) -> str: ...
    def bold(self, s: str) -> str: ...
    def link(self, label: str, url: str | None) -> str: ...
    def mark(self, s: str) -> str: ...
    def code(self, s: str) -> str: ...
    def visible_length(self, message: str) -> int: ...


class HtmlFormat:
    """Telegram's HTML parse mode: every piece of text escaped."""

    def text(self, s: str) -> str:
        return html.escape(encodable(s), quote=False)

    def bold(self, s: str) -> str:
        return f"<b>{s}</b>"

    def link(self, label: str, url: str | None) -> str:
        return f'<a href="{html.escape(encodable(url), quote=True)}">{label}</a>' if url else label

    def mark(self, s: str) -> str:
        return f"<b>{self.text(s)}</b>"

    def code(self, s: str) -> str:
        return f"<code>{self.text(s)}</code>"

    def visible_length(self, message: str) -> int:
        """Length as Telegram counts it after parsing entities (UTF-16 code units)."""
        return len(html.unescape(_TAG.sub("", message)).encode("utf-16-le")) // 2


class PlainFormat:
    """Plain terminal text; matched words in bold yellow when ``color``."""

    def __init__(self, color: bool = False) -> None:
        self.color = color

    def text(self, s: str) -> str:
        return printable(s)

    def bold(self, s: str) -> str:
        return f"\033[1m{s}\033[0m" if self.color else s

    def link(self, label: str, url: str | None) -> str:
        return f"{label}\n   {printable(url)}" if url else label

    def mark(self, s: str) -> str:
        return f"\033[1;33m{printable(s)}\033[0m" if self.color else printable(s)

    def code(self, s: str) -> str:
        return printable(s)

    def visible_length(self, message: str) -> int:
        return len(re.sub(r"\033\[[0-9;]*m", "", message))


HTML = HtmlFormat()


@dataclass(frozen=True, slots=True)
class Action:
    """What a button does: ``kind`` is 'page', 'post', 'unsub' or 'noop'; ``args`` its arguments."""

    kind: str
    args: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Button:
    label: str
    action: Action


@dataclass(frozen=True, slots=True)
class Message:
    """A rendered message: text in the format it was rendered for, and rows of buttons."""

    text: str
    buttons: tuple[tuple[Button, ...], ...] = ()


def _clip(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def _summary(fmt: Format, summary: Summary, limit: int | None = None) -> str:
    out, used = [], 0
    for piece, matched in summary.segments():
        if limit is not None and used + len(piece) > limit:
            piece = piece[: max(0, limit - used - 1)] + "…"
            out.append(fmt.mark(piece) if matched else fmt.text(piece))
            break
        used += len(piece)
        out.append(fmt.mark(piece) if matched else fmt.text(piece))
    return "".join(out)


def post_meta(fmt: Format, post: Post, lang: str) -> str:
    """``📅 2019-11-13 · nankai.info / 南开大学 · #南开大学``"""
    parts = [f"📅 {post.date:%Y-%m-%d}" if post.date else f"📅 {t(lang, 'undated')}"]
    if post.categories:
        parts.append(" / ".join(_clip(c, 30) for c in post.categories[:4]))
    if post.tags:
        parts.append(" ".join("#" + _clip(tag, 30).replace(" ", "_") for tag in post.tags[:5]))
    return fmt.text(" · ".join(parts))


def hit_block(fmt: Format, number: int | None, hit: Hit, lang: str, summary_limit: int | None = None) -> str:
    """One result: number (if any), linked title, date and labels, summary with matches marked."""
    title = fmt.bold(fmt.link(fmt.text(_clip(hit.post.title, TITLE_CHARS)), hit.post.link))
    prefix = f"{number}. " if number is not None else ""
    return f"{prefix}{title}\n{post_meta(fmt, hit.post, lang)}\n{_summary(fmt, hit.summary, summary_limit)}"


def fit_blocks(fmt: Format, lang: str, header: str, blocks: list[str], limit: int = MESSAGE_LIMIT) -> tuple[str, int]:
    """Join blocks under a header; drop trailing blocks (saying so) until it fits ``limit``.
    Returns the message and how many blocks it kept."""
    for keep in range(len(blocks), -1, -1):
        parts = [header, *blocks[:keep]]
        if keep < len(blocks):
            parts.append(fmt.text(t(lang, "more_omitted", n=len(blocks) - keep)))
        message = "\n\n".join(p for p in parts if p)
        if fmt.visible_length(message) <= limit:
            return message, keep
    return fmt.text(_clip(header, limit)), 0


def answer_block(fmt: Format, answer: Answer) -> str:
    """``💡 the answering sentence`` with the question's words marked, and its post's link."""
    title = fmt.link(fmt.text(_clip(answer.post.title, 60)), answer.post.link)
    return f"💡 {_summary(fmt, answer.text)}\n{fmt.text('—— ')}{title}"


def _listing_header(fmt: Format, listing: Listing, lang: str) -> str:
    """The answer (for a question), the header line, and how the dates were understood."""
    page, shown = listing.page, _clip(listing.request, 100)
    header_key = {"search": "results_header", "range": "range_header"}.get(listing.kind, "latest_header")
    if not page.total_exact and header_key != "latest_header":  # an estimate (see SearchPage)
        header_key += "_about"
    lines = [fmt.bold(fmt.text(t(lang, header_key, query=shown, total=page.total)))]
    notes = []
    if page.relaxed_dates is not None:
        notes.append(t(lang, "dates_relaxed", dates=describe_dates(page.relaxed_dates)))
    elif not page.query.dates.unbounded:
        notes.append(f"📅 {describe_dates(page.query.dates)}")
    if page.query.recent and page.query.has_terms:
        notes.append(t(lang, "newest_first"))
    if notes:
        lines.append(fmt.text(" · ".join(notes)))
    header = "\n".join(lines)
    return f"{answer_block(fmt, page.answer)}\n\n{header}" if page.answer else header


def render_problem(fmt: Format, problem: Problem, lang: str, query: str = "") -> Message:
    return Message(fmt.text(t(lang, problem.code, query=_clip(query, 100), **problem.fields)))


def render_listing(fmt: Format, listing: Listing, lang: str) -> Message:
    """A page of results with detail buttons and ◀ n/m ▶ paging."""
    page = listing.page
    shown = _clip(listing.request, 100)
    if page.total == 0:
        dates = f"\n📅 {describe_dates(page.query.dates)}" if page.query.dates_in_words else ""
        return Message(fmt.text(t(lang, "no_results", query=shown) + dates))
    header = _listing_header(fmt, listing, lang)
    first = page.offset + 1
    blocks = [hit_block(fmt, first + i, hit, lang) for i, hit in enumerate(page.hits)]
    text, kept = fit_blocks(fmt, lang, header, blocks)
    if kept < len(blocks):  # something was dropped: shorter summaries first
        blocks = [hit_block(fmt, first + i, hit, lang, summary_limit=60) for i, hit in enumerate(page.hits)]
        text, kept = fit_blocks(fmt, lang, header, blocks)
    details = tuple(
        Button(f"{t(lang, 'details')} {first + i}", Action("post", (hit.post.id,))) for i, hit in enumerate(page.hits)
    )
    nav: list[Button] = []
    if page.page_count > 1:
        args = (listing.kind, listing.request)
        if page.page_number > 1:
            nav.append(Button("◀", Action("page", (*args, str(page.page_number - 1)))))
        of = page.page_count if page.total_exact else f"~{page.page_count}"
        nav.append(Button(f"{page.page_number}/{of}", Action("noop")))
        if page.has_next:
            nav.append(Button("▶", Action("page", (*args, str(page.page_number + 1)))))
    return Message(text, tuple(row for row in (details, tuple(nav)) if row))


def _detail_links(fmt: Format, post: Post, lang: str) -> str:
    """"原文" (the original article) and "本站" (the post's page on the site), each where known."""
    links = [fmt.link(fmt.text(t(lang, key)), url) for key, url in (("source", post.url), ("site_page", post.page_url)) if url]
    return fmt.text(" · ").join(links) if links else fmt.text(t(lang, "no_source"))


def render_post(fmt: Format, post: Post, lang: str) -> Message:
    """A post's detail: title, date and labels, a longer lead summary, its links, the id."""
    summary = post_summary(post, DETAIL_CHARS)
    lines = [
        fmt.bold(fmt.text(_clip(post.title, TITLE_CHARS))),
        post_meta(fmt, post, lang),
        *([fmt.text(t(lang, "updated", date=f"{post.updated:%Y-%m-%d}"))] if post.updated else []),
        "",
        fmt.text(str(summary)),
        "",
        _detail_links(fmt, post, lang),
        fmt.text(f"{t(lang, 'id')}: ") + fmt.code(post.id),
    ]
    return Message("\n".join(lines))


def render_subscriptions(fmt: Format, subs: list[Subscription], lang: str,
                         channels: list[tuple[Channel, list[Subscription]]] | None = None) -> Message:
    """A chat's subscriptions (each with a remove button), then those of the channels it manages
    (removed with ``/unsubscribe @channel N``, which checks the sender again)."""
    channels = [(c, cs) for c, cs in channels or () if cs]
    if not subs and not channels:
        return Message(fmt.text(t(lang, "subs_none")))
    lines: list[str] = []
    if subs:
        lines.append(fmt.bold(fmt.text(t(lang, "subs_header"))))
        lines += [fmt.text(f"{i}. {s.query or t(lang, 'sub_all_label')}") for i, s in enumerate(subs, 1)]
    for channel, channel_subs in channels:
        lines += ["", fmt.bold(fmt.text(t(lang, "subs_channel_header", channel=channel.label)))]
        lines += [fmt.text(f"{i}. {s.query or t(lang, 'sub_all_label')}") for i, s in enumerate(channel_subs, 1)]
        lines.append(fmt.text(t(lang, "subs_channel_hint", channel=channel.label)))
    buttons = tuple((Button(t(lang, "unsub_button", n=i), Action("unsub", (str(s.id),))),) for i, s in enumerate(subs, 1))
    return Message("\n".join(lines).strip("\n"), buttons)


def _queries_line(fmt: Format, queries: tuple[str, ...] | list[str], lang: str) -> str:
    labels = dict.fromkeys(q or t(lang, "sub_all_label") for q in queries)
    return fmt.text(t(lang, "push_matched", queries=_clip("；".join(labels), 300)))


def render_push(fmt: Format, post: Post, queries: tuple[str, ...], lang: str, channel: bool = False) -> Message:
    """The message for one new post. In a channel it reads as the channel's own post: the
    linked title, date, summary (the link preview follows), with no word about subscriptions."""
    title = fmt.bold(fmt.link(fmt.text(_clip(post.title, TITLE_CHARS)), post.link))
    summary = fmt.text(str(post_summary(post)))
    if channel:
        return Message("\n".join([title, post_meta(fmt, post, lang), summary]))
    body = "\n".join([
        fmt.bold(fmt.text(t(lang, "push_single"))), title, post_meta(fmt, post, lang),
        summary, "", _queries_line(fmt, queries, lang),
    ])
    return Message(body)


def render_digest(fmt: Format, items: list[tuple[Post, tuple[str, ...]]], lang: str,
                  channel: bool = False) -> list[tuple[Message, list[str]]]:
    """Many new posts for one chat as few messages, each within the limit; with each message
    the ids of the posts it carries (so each can be marked sent when it is). A channel's
    digest has no line about subscriptions."""
    lines = []
    for post, _ in items:
        date = f"{post.date:%Y-%m-%d}" if post.date else t(lang, "undated")
        lines.append((post.id, f"• {fmt.link(fmt.text(_clip(post.title, TITLE_CHARS)), post.link)} {fmt.text('(' + date + ')')}"))
    queries = "" if channel else _queries_line(fmt, tuple(q for _, qs in items for q in qs), lang)
    budget = MESSAGE_LIMIT - fmt.visible_length(queries) - 64
    messages: list[tuple[Message, list[str]]] = []
    chunk: list[tuple[str, str]] = []

    def flush() -> None:
        header = fmt.bold(fmt.text(t(lang, "push_digest", n=len(chunk))))
        text = "\n".join([header, *(line for _, line in chunk), *(["", queries] if queries else [])])
        messages.append((Message(text), [pid for pid, _ in chunk]))

    for pid, line in lines:
        size = sum(fmt.visible_length(x) + 1 for _, x in chunk) + fmt.visible_length(line)
        if chunk and size > budget:
            flush()
            chunk = []
        chunk.append((pid, line))
    if chunk:
        flush()
    return messages


@dataclass(frozen=True, slots=True)
class Article:
    """One inline-mode result: a unique id (at most 64 bytes), the title and description shown
    in the list, and the message sent when it is chosen."""

    id: str
    title: str
    description: str
    message: Message
    url: str | None


def _article_id(post_id: str) -> str:
    if len(post_id.encode("utf-8")) <= 64:
        return post_id
    return hashlib.blake2b(post_id.encode("utf-8"), digest_size=16).hexdigest()


def render_articles(fmt: Format, listing: Listing, lang: str) -> list[Article]:
    """Inline-mode results for a page of hits."""
    articles = []
    for hit in listing.page.hits:
        date = f"{hit.post.date:%Y-%m-%d}" if hit.post.date else t(lang, "undated")
        text = hit_block(fmt, None, hit, lang)
        articles.append(Article(
            _article_id(hit.post.id), _clip(hit.post.title, 100) or hit.post.id,
            _clip(f"{date} · {hit.summary}", 200), Message(text), hit.post.link,
        ))
    return articles
