"""Subscriptions and the new-post push, against the fake Bot API server: who gets what, once,
across failures, restarts and a kill -9, within Telegram's limits."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from contextlib import closing
from pathlib import Path

import pytest

from bot.store import SubscriberStore
from bot_harness import Harness, running_bot
from conftest import REPO, write_post
from fake_bot_api import FakeBotAPI, utf16_len


@pytest.fixture
async def bot(api: FakeBotAPI, content: Path, tmp_path: Path):
    async with running_bot(api, content, tmp_path / "data", admin_ids=frozenset({999})) as harness:
        await harness.baseline()
        yield harness


def new_post(content: Path, n: int, title: str, body: str, **kw) -> Path:
    return write_post(content, f"new/2021-03-{n:02d}-p{n}.md", title, body + f"\n\n[转入文章首发地址](https://example.com/new/{n})",
                      date=f"2021-03-{n:02d} 09:00:00", urlname=f"new-{n}", **kw)


async def push(h: Harness):
    return await h.bot.pusher.run(h.app.bot)


def pushed(api: FakeBotAPI, chat_id: int) -> list[str]:
    return [m.visible for m in api.sent_to(chat_id)]


async def test_subscribe_list_and_unsubscribe(bot: Harness):
    assert "全部新文章" in (await bot.ask("/subscribe")).visible
    assert "已订阅：主题教育 -体育" in (await bot.ask("/subscribe 主题教育   -体育")).visible
    assert "已经订阅过了" in (await bot.ask("/subscribe 主题教育 -体育")).visible
    assert "无法识别日期" in (await bot.ask("/subscribe 教育 since:2019-13-01")).visible
    listing = await bot.ask("/subscriptions")
    assert "1. 全部新文章" in listing.visible and "2. 主题教育 -体育" in listing.visible
    assert len(listing.buttons) == 2
    await bot.press(listing, listing.buttons[0]["callback_data"])
    assert "全部新文章" not in bot.current(listing).visible and len(bot.current(listing).buttons) == 1
    assert "已取消 1" in (await bot.ask("/unsubscribe 1")).visible
    for bad in ("7", "²", "x"):
        assert (await bot.ask(f"/unsubscribe {bad}")).visible == "用法：/unsubscribe [编号]，编号见 /subscriptions"
    assert "还没有订阅" in (await bot.ask("/subscriptions")).visible


async def test_subscription_limit(bot: Harness):
    for i in range(20):
        await bot.ask(f"/subscribe 关键词{i}")
    assert "最多 20" in (await bot.ask("/subscribe 再来一个")).visible
    assert "已取消 20" in (await bot.ask("/unsubscribe")).visible


async def test_only_group_admins_change_group_subscriptions(bot: Harness, api: FakeBotAPI):
    group = -2002
    api.admins[group] = {7}
    refused = await bot.ask("/subscribe", chat_id=group, chat_type="supergroup", user_id=8)
    assert "只有群管理员" in refused.visible
    accepted = await bot.ask("/subscribe 体育", chat_id=group, chat_type="supergroup", user_id=7)
    assert "已订阅" in accepted.visible
    listing = await bot.ask("/subscriptions", chat_id=group, chat_type="supergroup", user_id=8)
    answer = await bot.press(listing, listing.buttons[0]["callback_data"], user_id=8, chat_type="supergroup")
    assert "只有群管理员" in answer["text"]
    assert bot.store.count_subscriptions(group) == 1


async def test_new_posts_reach_exactly_the_matching_chats(bot: Harness, api: FakeBotAPI, content: Path):
    await bot.ask("/subscribe", chat_id=1)
    await bot.ask("/subscribe 体育", chat_id=2)
    await bot.ask("/subscribe 主题教育 -体育", chat_id=3)
    await bot.ask("/subscribe cat:南开大学", chat_id=4)
    await bot.ask("/subscribe 人工智能 2019年", chat_id=5)
    await bot.ask("/subscribe 体育", chat_id=6)
    await bot.ask("/subscribe 比赛", chat_id=6)  # two subscriptions, one message
    before = {c: len(api.sent_to(c)) for c in range(1, 7)}
    new_post(content, 1, "南开大学->校运会体育比赛圆满落幕 | nankai.info", "全校师生参加体育比赛。", categories=["南开大学"])
    new_post(content, 2, "学院开展主题教育学习", "深入开展主题教育，推动学习走深走实。")
    new_post(content, 3, "人工智能论坛举行", "人工智能专家齐聚一堂。")  # 2021: not for chat 5
    report = await push(bot)
    assert report.added == 3 and report.sent == 7
    got = {c: pushed(api, c)[before[c]:] for c in range(1, 7)}
    assert len(got[1]) == 3
    assert len(got[2]) == 1 and "校运会体育比赛" in got[2][0]
    assert len(got[3]) == 1 and "主题教育学习" in got[3][0]
    assert len(got[4]) == 1 and "校运会" in got[4][0]
    assert got[5] == []
    assert len(got[6]) == 1 and "体育；比赛" in got[6][0]
    message = api.sent_to(2)[-1]
    assert 'href="https://example.com/new/1"' in message.text and "2021-03-01" in message.visible
    assert "全校师生参加体育比赛" in message.visible
    # Nothing twice: another run, and an edited post, push nothing.
    (content / "new/2021-03-02-p2.md").write_text((content / "new/2021-03-02-p2.md").read_text() + "\n补充。\n")
    again = await push(bot)
    assert again.changed == 1 and again.sent == 0
    assert {c: len(api.sent_to(c)) for c in range(1, 7)} == {c: before[c] + len(got[c]) for c in range(1, 7)}


async def test_first_start_pushes_nothing_and_posts_added_while_stopped_come_after_restart(
        api: FakeBotAPI, content: Path, tmp_path: Path):
    data = tmp_path / "data"
    async with running_bot(api, content, data) as h:
        await h.baseline()
        await h.ask("/subscribe", chat_id=42)
        assert (await push(h)).sent == 0
    new_post(content, 5, "停机期间发布的文章", "机器人停机时新增的文章。")
    count = len(api.sent_to(42))
    async with running_bot(api, content, data) as h:  # the JobQueue's first run comes a second after start
        sent = await api.wait_for(lambda: len(api.sent_to(42)) > count and api.sent_to(42)[count])
        assert "停机期间发布的文章" in sent.visible


async def test_blocked_and_deleted_chats_are_deactivated(bot: Harness, api: FakeBotAPI, content: Path):
    for chat in (10, 11, 12):
        await bot.ask("/subscribe", chat_id=chat)
    api.blocked.add(10)
    api.missing.add(11)
    new_post(content, 6, "第一篇", "内容。")
    report = await push(bot)
    assert report.deactivated == 2 and report.sent == 1
    assert not bot.store.is_active(10) and not bot.store.is_active(11) and bot.store.is_active(12)
    tries = len(api.of("sendMessage"))
    new_post(content, 7, "第二篇", "内容。")
    await push(bot)
    assert [int(c.params["chat_id"]) for c in api.of("sendMessage")[tries:]] == [12]
    api.blocked.discard(10)
    await bot.ask("/subscribe", chat_id=10)  # coming back re-activates
    assert bot.store.is_active(10)


async def test_network_errors_leave_the_delivery_pending(bot: Harness, api: FakeBotAPI, content: Path):
    await bot.ask("/subscribe", chat_id=20)
    api.unreachable.add(20)
    new_post(content, 8, "网络故障时的文章", "内容。")
    before = len(api.sent_to(20))
    report = await push(bot)
    assert report.failed == 1 and report.sent == 0 and bot.store.is_active(20)
    api.unreachable.clear()
    report = await push(bot)
    assert report.sent == 1 and "网络故障时的文章" in api.sent_to(20)[before].visible


async def test_a_crash_between_scan_and_queueing_loses_nothing(bot: Harness, api: FakeBotAPI, content: Path, monkeypatch):
    await bot.ask("/subscribe", chat_id=30)
    new_post(content, 9, "崩溃前扫描到的文章", "内容。")

    def crash(*args, **kwargs):
        raise RuntimeError("killed")

    monkeypatch.setattr(bot.store, "record_new_posts", crash)
    with pytest.raises(RuntimeError):
        await push(bot)  # the archive saw the post, the store did not
    monkeypatch.undo()
    before = len(api.sent_to(30))
    assert (await push(bot)).sent == 1 and "崩溃前扫描到的文章" in api.sent_to(30)[before].visible


async def test_digest_for_many_posts_stays_under_the_limit(bot: Harness, api: FakeBotAPI, content: Path):
    await bot.ask("/subscribe", chat_id=50)
    await bot.ask("/subscribe 教育", chat_id=51)
    for n in range(1, 31):
        new_post(content, n, f"假期后的第{n}篇长标题文章：" + "教育改革发展" * 30, "内容。")
    before = len(api.sent_to(50))
    report = await push(bot)
    assert report.sent == 60
    messages = api.sent_to(50)[before:]
    assert 1 < len(messages) < 30  # a digest, split to fit
    assert all(utf16_len(m.visible) <= 4096 for m in messages)
    links = Counter(link for m in messages for link in __import__("re").findall(r'href="([^"]+)"', m.text))
    assert len(links) == 30 and set(links.values()) == {1}
    assert "篇新文章" in messages[0].visible


async def test_many_subscribers_do_not_block_commands(api: FakeBotAPI, content: Path, tmp_path: Path):
    data = tmp_path / "data"
    store = SubscriberStore(data / "archive-bot.sqlite3")
    for chat in range(100_000, 102_000):
        store.upsert_chat(chat, "private", "zh")
        store.add_subscription(chat, "")
    store.close()
    # 2,000 messages at 200 a second: the push takes at least ten seconds, however fast the machine.
    limits = dict(chat_max_rate=1, overall_max_rate=200, group_max_rate=20)
    async with running_bot(api, content, data, limits=limits) as h:
        await h.baseline()
        new_post(content, 11, "两千位订阅者的新文章", "内容。")
        job = asyncio.create_task(push(h))
        await api.wait_for(lambda: len(api.of("sendMessage")) > 200)
        reply = await h.ask("/search 主题教育", chat_id=7)
        assert "主题教育" in reply.visible
        # Answered while the push was still running: it did not wait for the 2,000 sends.
        assert not job.done() and len([m for m in api.messages.values() if m.chat_id >= 100_000]) < 2000
        report = await asyncio.wait_for(job, 60)
        assert report.sent == 2000
        assert len({m.chat_id for m in api.messages.values() if m.chat_id >= 100_000}) == 2000


def run_bot_process(api: FakeBotAPI, content: Path, data: Path, log: Path) -> subprocess.Popen:
    """``archive-bot run`` in its own process, against the fake server."""
    env = {**os.environ, "TELEGRAM_BOT_TOKEN": api.token, "TELEGRAM_API_BASE_URL": api.base_url,
           "ARCHIVE_CONTENT_DIR": str(content), "ARCHIVE_DATA_DIR": str(data), "ARCHIVE_SCAN_INTERVAL": "3600",
           "PYTHONPATH": str(REPO), "LOG_LEVEL": "DEBUG"}
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "bot.cli", "run"], cwd=log.parent, env=env,
                                stdout=out, stderr=out)


async def test_kill_9_in_the_middle_of_a_push_then_restart_delivers_each_pair_once(
        api: FakeBotAPI, content: Path, tmp_path: Path):
    from bot.push import Pusher, PushReport
    from bot.service import ArchiveService
    from retrieval import Archive

    data, log = tmp_path / "data", tmp_path / "bot.log"
    store = SubscriberStore(data / "archive-bot.sqlite3")
    channel = -1003000
    chats = [*range(300, 305), channel]
    for chat in chats[:-1]:
        store.upsert_chat(chat, "private", "zh")
        store.add_subscription(chat, "")
    api.add_channel(channel, "kill_news", admins={300})
    store.upsert_channel(channel, "kill_news", "zh", admin_chat_id=300)
    store.add_subscription(channel, "")
    with Archive.open(content, data / "index") as archive:
        Pusher(ArchiveService(archive, store)).scan(PushReport())  # the baseline
    store.close()
    for n in range(1, 4):  # added while the bot is stopped: 5 chats and a channel x 3 posts to deliver
        new_post(content, n, f"推送测试文章{n}", "内容。")
    accepted: list[tuple[int, str]] = []

    def count(status: str) -> int:  # what the bot has committed, read from its own database
        with closing(sqlite3.connect(data / "archive-bot.sqlite3", timeout=30)) as db:
            return db.execute("SELECT COUNT(*) FROM deliveries WHERE status = ?", (status,)).fetchone()[0]

    def committed() -> int:
        return count("sent")

    async def record(params: dict) -> None:
        if len(accepted) >= 6:
            # The 7th message: once the first six are committed as sent, the process dies
            # before this one reaches the user. (Between Telegram's acceptance of a message and
            # the commit right after it there is no way to know: see bot/push.py.)
            await api.wait_for(lambda: committed() >= 6, timeout=20)
            first.send_signal(signal.SIGKILL)  # this process only, never the restarted one
            raise ConnectionError
        accepted.append((int(params["chat_id"]), params["text"]))

    api.before_send = record
    bot_process = first = run_bot_process(api, content, data, log)
    try:
        assert await asyncio.to_thread(bot_process.wait, 60) == -signal.SIGKILL
        assert len(accepted) == 6
        api.before_send = lambda params: accepted.append((int(params["chat_id"]), params["text"]))
        bot_process = run_bot_process(api, content, data, log)
        await api.wait_for(lambda: len(accepted) >= 18, timeout=60)
        # Everything is committed as sent and nothing is pending: the run has nothing more to send.
        await api.wait_for(lambda: committed() == 18 and count("pending") == 0, timeout=60)
        pairs = Counter((chat, n) for chat, text in accepted for n in range(1, 4) if f"推送测试文章{n}" in text)
        assert len(accepted) == 18 and set(pairs) == {(c, n) for c in chats for n in range(1, 4)}
        assert set(pairs.values()) == {1}  # none lost, none twice
    finally:
        if bot_process.poll() is None:
            bot_process.send_signal(signal.SIGINT)
            try:
                await asyncio.to_thread(bot_process.wait, 20)
            except subprocess.TimeoutExpired:
                bot_process.kill()
    text = log.read_text(errors="replace")
    assert api.token not in text and "TEST-token" not in text  # the token never reaches the logs


async def test_a_hexo_draft_is_pushed_once_when_it_is_published_and_never_before(api: FakeBotAPI, tmp_path: Path):
    site = tmp_path / "site"
    (site / "source").mkdir(parents=True)
    (site / "_config.yml").write_text("url: https://blog.example.com\npermalink: :year/:title/\ntimezone: Asia/Shanghai\n")
    shutil.copytree(Path(__file__).parent / "fixtures" / "posts", site / "source" / "_posts")
    posts, drafts = site / "source" / "_posts", site / "source" / "_drafts"
    async with running_bot(api, site, tmp_path / "data") as h:
        await h.baseline()
        await h.ask("/subscribe", chat_id=60)
        before = len(api.sent_to(60))
        draft = write_post(posts, "plan.md", "尚未发布的计划", "草稿里的计划。", date="2021-04-01 09:00:00", urlname="plan")
        draft.write_text(draft.read_text().replace("urlname: plan", "urlname: plan\npublished: false"))
        write_post(drafts, "idea.md", "草稿箱里的想法", "还在写。", date="2021-04-02 09:00:00", urlname="idea")
        assert (await push(h)).sent == 0
        assert h.service.search('"草稿里的计划"').page.total == 0 and h.service.post("plan").code == "not_found"
        draft.write_text(draft.read_text().replace("published: false", "published: true"))
        assert (await push(h)).sent == 1
        shown = api.sent_to(60)[before]
        assert "尚未发布的计划" in shown.visible and 'href="https://blog.example.com/2021/plan/"' in shown.text
        assert (await push(h)).sent == 0  # once
        (drafts / "idea.md").rename(posts / "idea.md")  # what `hexo publish idea` does
        assert (await push(h)).sent == 1 and "草稿箱里的想法" in api.sent_to(60)[before + 1].visible
        draft.write_text(draft.read_text().replace("published: true", "published: false"))  # withdrawn
        report = await push(h)
        assert report.removed == 1 and report.sent == 0 and h.service.search('"草稿里的计划"').page.total == 0
        assert len(api.sent_to(60)) == before + 2


async def test_after_a_good_run_only_the_posts_a_refresh_added_are_compared(bot: Harness, content: Path, monkeypatch):
    await bot.ask("/subscribe", chat_id=31)
    await push(bot)  # this process's first run compares every post: now it has caught up
    listed = []
    original = type(bot.service.archive).post_ids
    monkeypatch.setattr(type(bot.service.archive), "post_ids", lambda self: listed.append(1) or original(self))
    new_post(content, 10, "追上之后的文章", "内容。")
    report = await push(bot)
    assert report.added == 1 and report.sent == 1 and listed == []  # no walk over a million ids


def test_searches_go_on_while_the_files_are_scanned(bot: Harness, monkeypatch):
    service = bot.service
    scanning, release = threading.Event(), threading.Event()
    real = service.archive.scan

    def slow_scan(full: bool = True):
        scanning.set()
        release.wait(30)
        return real(full)

    monkeypatch.setattr(service.archive, "scan", slow_scan)
    refresher = threading.Thread(target=service.refresh)
    refresher.start()
    try:
        assert scanning.wait(30)
        answers = []
        searcher = threading.Thread(target=lambda: answers.append(service.search("主题教育")))
        searcher.start()
        searcher.join(30)  # it would wait for the lock until the scan ends if the scan held it
        assert not searcher.is_alive() and answers[0].page.total == 2
    finally:
        release.set()
        refresher.join(30)
