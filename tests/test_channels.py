"""Pushing to channels, and groups that become supergroups, through the fake Bot API: who may
subscribe a channel (checked with getChat/getChatMember), what a channel receives, what its
administrators are told, and subscriptions that follow a group to its new id."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot_harness import Harness, running_bot
from conftest import write_post
from fake_bot_api import FakeBotAPI

CHANNEL, ADMIN, STRANGER = -1001234567890, 42, 43


@pytest.fixture
async def bot(api: FakeBotAPI, content: Path, tmp_path: Path):
    api.add_channel(CHANNEL, "xx_news", admins={ADMIN})
    async with running_bot(api, content, tmp_path / "data", admin_ids=frozenset({999})) as harness:
        await harness.baseline()
        yield harness


def new_post(content: Path, n: int, title: str, body: str) -> None:
    write_post(content, f"new/{n}.md", title, body + f"\n\n[转入文章首发地址](https://example.com/c/{n})",
               date=f"2021-05-{n:02d} 09:00:00", urlname=f"c-{n}")


async def push(h: Harness):
    return await h.bot.pusher.run(h.app.bot)


async def test_an_administrator_subscribes_a_channel_and_it_gets_each_matching_post_once(bot: Harness, api: FakeBotAPI, content: Path):
    reply = await bot.ask("/subscribe @xx_news 主题教育", chat_id=ADMIN)
    assert reply.visible == "✅ @xx_news 已订阅：主题教育"
    assert (await bot.ask("/subscribe -1001234567890", chat_id=ADMIN)).visible == "✅ @xx_news 将收到全部新文章。"
    new_post(content, 1, "学院开展主题教育", "深入开展主题教育。")
    new_post(content, 2, "体育比赛", "运动会举行。")
    report = await push(bot)
    assert report.sent == 2 and report.messages == 2
    posts = api.sent_to(CHANNEL)
    assert [p.visible.split("\n")[0] for p in posts] == ["学院开展主题教育", "体育比赛"]
    first = posts[0]
    assert first.visible == "学院开展主题教育\n📅 2021-05-01\n深入开展主题教育。"  # no bot talk in a channel
    assert first.params["link_preview_options"] == {"url": "https://example.com/c/1"}
    assert "reply_markup" not in first.params
    assert (await push(bot)).sent == 0  # once


async def test_who_may_subscribe_a_channel_is_checked_each_time(bot: Harness, api: FakeBotAPI):
    assert (await bot.ask("/subscribe @xx_news", chat_id=STRANGER)).visible == "只有 @xx_news 的管理员才能修改它的订阅。"
    assert (await bot.ask("/subscribe @no_such_channel", chat_id=ADMIN)).visible.startswith("我看不到频道 @no_such_channel。")
    api.channels[CHANNEL].bot_can_post = False
    assert (await bot.ask("/subscribe @xx_news", chat_id=ADMIN)).visible == \
        "请把我添加为 @xx_news 的管理员，并允许我发布消息，然后再试。"
    api.channels[CHANNEL].bot_can_post = True
    assert (await bot.ask("/subscribe @xx_news 教育", chat_id=ADMIN)).visible == "✅ @xx_news 已订阅：教育"
    listing = await bot.ask("/subscriptions", chat_id=ADMIN)
    assert listing.visible == "📢 频道 @xx_news 的订阅：\n1. 教育\n（/unsubscribe @xx_news 编号 取消）"
    group = await bot.ask("/subscribe @xx_news", chat_id=-5005, chat_type="supergroup", user_id=ADMIN)
    assert group.visible == "请在与我的私聊中为频道设置订阅。"
    api.channels[CHANNEL].admins.discard(ADMIN)  # no longer an administrator: no longer in charge
    assert (await bot.ask("/unsubscribe @xx_news 1", chat_id=ADMIN)).visible == "只有 @xx_news 的管理员才能修改它的订阅。"
    assert bot.store.count_subscriptions(CHANNEL) == 1
    api.channels[CHANNEL].admins.add(ADMIN)
    assert (await bot.ask("/unsubscribe @xx_news 1", chat_id=ADMIN)).visible == "已为 @xx_news 取消 1 个订阅。"
    assert bot.store.count_subscriptions(CHANNEL) == 0


async def test_losing_the_right_to_post_pauses_the_channel_and_tells_its_admins_once(bot: Harness, api: FakeBotAPI, content: Path):
    await bot.ask("/subscribe @xx_news", chat_id=ADMIN)
    told = len(api.sent_to(ADMIN))
    api.channels[CHANNEL].bot_can_post = False
    new_post(content, 3, "第一篇", "内容。")
    report = await push(bot)
    assert report.deactivated == 1 and report.sent == 0 and not bot.store.is_active(CHANNEL)
    notices = api.sent_to(ADMIN)[told:]
    assert len(notices) == 1 and notices[0].visible.startswith("⚠️ 我已无法在 @xx_news 发布消息")
    new_post(content, 4, "第二篇", "内容。")
    await push(bot)
    assert len(api.sent_to(ADMIN)) == told + 1 and api.sent_to(CHANNEL) == []  # told once; paused
    api.channels[CHANNEL].bot_can_post = True
    assert (await bot.ask("/subscribe @xx_news", chat_id=ADMIN)).visible == "@xx_news 已经订阅过了：全部新文章"
    assert bot.store.is_active(CHANNEL)
    new_post(content, 5, "第三篇", "内容。")
    assert (await push(bot)).sent == 1 and api.sent_to(CHANNEL)[0].visible.startswith("第三篇")


async def test_a_group_that_becomes_a_supergroup_keeps_its_subscriptions_and_posts(bot: Harness, api: FakeBotAPI, content: Path):
    old, new = -4001, -1004001
    api.admins[old] = {7}
    await bot.ask("/subscribe 教育", chat_id=old, chat_type="group", user_id=7)
    new_post(content, 6, "教育新闻一", "教育。")
    new_post(content, 7, "教育新闻二", "教育。")
    api.migrated[old] = new  # Telegram answers sends to the old id with migrate_to_chat_id
    report = await push(bot)
    assert report.migrated == 1 and report.sent == 2 and report.deactivated == 0
    assert [m.visible.split("\n")[1] for m in api.sent_to(new)] == ["教育新闻一", "教育新闻二"]
    assert [s.query for s in bot.store.subscriptions(new)] == ["教育"] and bot.store.subscriptions(old) == []
    assert (await push(bot)).sent == 0  # nothing twice


async def test_the_migration_service_message_moves_the_subscriptions(bot: Harness, api: FakeBotAPI, content: Path):
    old, new = -4002, -1004002
    api.admins[old] = {7}
    await bot.ask("/subscribe", chat_id=old, chat_type="group", user_id=7)
    await bot.settled(api.migrate(old, new))
    assert [s.query for s in bot.store.subscriptions(new)] == [""] and bot.store.subscriptions(old) == []
    new_post(content, 8, "迁移之后", "内容。")
    report = await push(bot)
    assert report.sent == 1 and report.migrated == 0 and api.sent_to(new)[0].visible.split("\n")[1] == "迁移之后"


async def test_channels_from_the_settings_are_kept_and_reported(api: FakeBotAPI, content: Path, tmp_path: Path):
    api.add_channel(CHANNEL, "xx_news", admins={ADMIN})
    api.add_channel(-1009, "yy_news", admins={ADMIN})
    channels = (("@xx_news", "主题教育"), ("@yy_news", ""))
    async with running_bot(api, content, tmp_path / "data", admin_ids=frozenset({999}), channels=channels) as h:
        await h.baseline()
        assert [(c.label, s.query) for s, c in h.store.settings_subscriptions()] == [("@xx_news", "主题教育"), ("@yy_news", "")]
        stats = await h.ask("/stats", chat_id=999)
        assert "频道 2" in stats.visible and "设置中的频道：@xx_news 主题教育；@yy_news *" in stats.visible
        new_post(content, 9, "主题教育推进会", "主题教育。")
        assert (await push(h)).sent == 2
    async with running_bot(api, content, tmp_path / "data", channels=(("@yy_news", ""),)) as h:  # one removed
        await h.baseline()
        assert [(c.label, s.query) for s, c in h.store.settings_subscriptions()] == [("@yy_news", "")]
