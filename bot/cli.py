"""The ``archive-bot`` command: run, chat, search, stats, index."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from .logs import setup_logging
from .settings import Settings, SettingsError, load_settings

log = logging.getLogger("archive-bot")

NO_TOKEN = """\
No bot token: set TELEGRAM_BOT_TOKEN (in the environment or in .env; see .env.example).

How to get one: open Telegram, talk to @BotFather (https://t.me/BotFather), send /newbot,
choose a name and a username; it replies with a token like 123456789:AAE…. Then:
    echo 'TELEGRAM_BOT_TOKEN=123456789:AAE…' >> .env && archive-bot run

What works without a token, on the archive in {content} ({posts} posts):
    archive-bot search 主题教育          ranked search from the terminal (--json for JSON)
    archive-bot chat                     the bot's conversation in the terminal
    archive-bot stats                    archive size, date span, skipped files
"""


#: How each command uses the persisted index: the bot and ``index`` maintain it (waiting for
#: another writer to finish); lookups write when nobody else does, else read it as it is.
ACCESS = {"run": "write", "index": "write"}


def _waiting(holder: str) -> None:
    print(f"archive-bot: the index is being written by {holder}; waiting for it to finish "
          "(Ctrl-C to give up)…", file=sys.stderr, flush=True)


def _open_archive(settings: Settings, args: argparse.Namespace, progress: bool = False, access: str | None = None,
                  sync: bool = True):
    from retrieval import Archive

    content = Path(args.content) if getattr(args, "content", None) else settings.content_dir
    index_dir = None if getattr(args, "no_index", False) else settings.index_dir
    bar = None
    callback = None
    if progress and sys.stderr.isatty():
        from tqdm import tqdm

        def callback(done: int, total: int) -> None:
            nonlocal bar
            if bar is None:
                bar = tqdm(total=total, unit="post", desc="indexing", smoothing=0.1)
            bar.update(done)

    try:
        archive = Archive.open(
            content, index_dir, tz=settings.timezone, user_dict=settings.user_dict,
            rebuild=getattr(args, "rebuild", False), progress=callback,
            access=access or ACCESS.get(args.command, "auto"), on_wait=_waiting,
            site_url=settings.site_url, permalink=settings.permalink, sync=sync,
        )
    finally:
        if bar is not None:
            bar.close()
    return archive


def _service(settings: Settings, args: argparse.Namespace, with_store: bool = False):
    from .service import ArchiveService
    from .store import SubscriberStore

    # The bot's push job syncs with the files a second after the start: no need to first.
    archive = _open_archive(settings, args, sync=not with_store)
    store = SubscriberStore(settings.db_path) if with_store else None
    return ArchiveService(archive, store)


def cmd_search(settings: Settings, args: argparse.Namespace) -> int:
    from .render import PlainFormat, answer_block, hit_block, render_problem
    from .service import Problem

    service = _service(settings, args)
    query = " ".join(args.query)
    result = service.search(query, per_page=args.limit)
    fmt = PlainFormat(color=sys.stdout.isatty() and not args.json)
    if isinstance(result, Problem):
        print(render_problem(fmt, result, "en", query).text, file=sys.stderr)
        return 1
    page = result.page
    if args.json:
        if page.answer is not None:
            answer = page.answer
            print(json.dumps({"answer": {
                "text": str(answer.text), "highlights": [list(s) for s in answer.text.spans],
                "id": answer.post.id, "title": answer.post.title, "url": answer.post.link,
            }}, ensure_ascii=False))
        for hit in page.hits:
            print(json.dumps({
                "id": hit.post.id, "title": hit.post.title,
                "date": hit.post.date.isoformat() if hit.post.date else None,
                "url": hit.post.link, "source_url": hit.post.url, "page_url": hit.post.page_url,
                "score": hit.score, "summary": str(hit.summary),
                "highlights": [list(s) for s in hit.summary.spans],
            }, ensure_ascii=False))
        return 0
    from retrieval import describe_dates

    if page.answer is not None:
        print(f"{answer_block(fmt, page.answer)}\n")
    about = "" if page.total_exact else "about "
    print(f"{about}{page.total} results for {query!r}" + (f" (showing {len(page.hits)})" if page.total > len(page.hits) else "")
          + ("" if page.query.dates.unbounded else f", dated {describe_dates(page.query.dates)}")
          + (", newest first" if page.query.recent and page.query.has_terms else ""))
    for i, hit in enumerate(page.hits, 1):
        score = f"   score {hit.score:.3f}" if hit.score is not None else ""
        print(f"\n{hit_block(fmt, i, hit, 'en')}{score}")
    return 0


def cmd_stats(settings: Settings, args: argparse.Namespace) -> int:
    archive = _open_archive(settings, args)
    s = archive.stats()
    span = f"{s.first_date:%Y-%m-%d} .. {s.last_date:%Y-%m-%d}" if s.first_date and s.last_date else "-"
    from .render import printable

    print(f"posts:      {s.posts}\ndate span:  {span}\nundated:    {s.undated}\nterms:      {s.terms}")
    print(f"skipped:    {len(s.skipped)} files")
    for rel, reason in s.skipped.items():
        print(printable(f"  {rel}: {reason}"))
    return 0


def cmd_index(settings: Settings, args: argparse.Namespace) -> int:
    import time

    started = time.perf_counter()
    archive = _open_archive(settings, args, progress=True)
    s = archive.stats()
    print(f"{s.posts} posts indexed in {settings.index_dir} ({len(s.skipped)} files skipped) "
          f"in {time.perf_counter() - started:.1f} s")
    return 0


def cmd_chat(settings: Settings, args: argparse.Namespace) -> int:
    from .chat import run_chat

    service = _service(settings, args)
    service.archive.close()  # a conversation may last: let a bot that starts meanwhile write
    run_chat(service, lang=args.lang)
    return 0


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.token:
        archive = _open_archive(settings, args, access="auto")  # only to say how big it is
        print(NO_TOKEN.format(content=archive.content_dir, posts=len(archive)), file=sys.stderr)
        return 2
    from .app import run_bot

    run_bot(settings, _service(settings, args, with_store=True), webhook_url=args.webhook_url,
            listen=args.listen, port=args.port)
    return 0


MAX_LIMIT = 100


def _limit(raw: str) -> int:
    """``--limit``: a whole number of results from 1 to :data:`MAX_LIMIT`."""
    from .service import user_number

    value = user_number(raw)
    if value is None or not 1 <= value <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_LIMIT}, not {raw!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="archive-bot", description="Search an archive of Chinese news posts; serve it as a Telegram bot.")
    parser.add_argument("--log-level", default=None, help="DEBUG, INFO, WARNING (default: LOG_LEVEL or WARNING; INFO for run)")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_content(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--content", help="content directory (default: ARCHIVE_CONTENT_DIR or ./content)")
        return p

    p = with_content(sub.add_parser("run", help="run the Telegram bot (long polling, or a webhook)"))
    p.add_argument("--webhook-url", help="public HTTPS URL Telegram should post updates to")
    p.add_argument("--listen", default="0.0.0.0", help="webhook: address to listen on")
    p.add_argument("--port", type=int, default=8443, help="webhook: port to listen on")
    p.set_defaults(func=cmd_run)
    p = with_content(sub.add_parser("chat", help="talk to the bot in the terminal (no token needed)"))
    p.add_argument("--lang", choices=("zh", "en"), default="zh")
    p.set_defaults(func=cmd_chat)
    p = with_content(sub.add_parser("search", help="search from the terminal"))
    p.add_argument("query", nargs="+")
    p.add_argument("--limit", type=_limit, default=10, help=f"results to show (1-{MAX_LIMIT}, default 10)")
    p.add_argument("--json", action="store_true", help="one JSON object per hit")
    p.add_argument("--no-index", action="store_true", help="do not read or write the persisted index")
    p.set_defaults(func=cmd_search)
    p = with_content(sub.add_parser("stats", help="post count, date span, skipped files"))
    p.set_defaults(func=cmd_stats)
    p = with_content(sub.add_parser("index", help="build or update the persisted index, with progress"))
    p.add_argument("--rebuild", action="store_true", help="rebuild from scratch")
    p.set_defaults(func=cmd_index)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"archive-bot: invalid setting: {exc}", file=sys.stderr)
        return 2
    level = args.log_level or os.environ.get("LOG_LEVEL") or ("INFO" if args.command == "run" else "WARNING")
    setup_logging(level, settings.token)
    from retrieval import ArchiveError
    from telegram.error import InvalidToken

    try:
        return args.func(settings, args)
    except ArchiveError as exc:
        print(f"archive-bot: {exc}", file=sys.stderr)
        return 2
    except InvalidToken:
        print("archive-bot: Telegram rejected the bot token (TELEGRAM_BOT_TOKEN); get a new one from "
              "@BotFather with /token", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`archive-bot search … | head -1`): stop quietly, and keep
        # Python from complaining again when it flushes stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
