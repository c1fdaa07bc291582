"""The real Application, polling a fake Bot API server on 127.0.0.1: commands, paging, inline
mode, odd input, groups, English users, Telegram's limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot_harness import Harness, running_bot
from conftest import write_post
from fake_bot_api import FakeBotAPI, parse_html, utf16_len

SEED_URL = "http://news.nankai.edu.cn/ywsd/system/2019/11/13/030036368.shtml"


@pytest.fixture
def archive_dir(content: Path) -> Path:
    """The fixture posts plus 62 generated ones about education (for paging and inline mode)."""
    for i in range(62):
        day = 1 + i % 28
        write_post(content, f"gen/2019-11-{day:02d}-edu-{i}.md", f"南开大学->教育新闻第{i}期：高校思政课改革 | nankai.info",
                   f"第{i}期。南开大学推进主题教育，教育改革持续深化。学生们表示收获很大。\n\n[转入文章首发地址](https://example.com/edu/{i})",
                   date=f"2019-11-{day:02d} 08:00:00", urlname=f"edu-{i}", tags=["教育"], categories=["nankai.info"])
    return content


@pytest.fixture
async def bot(api: FakeBotAPI, archive_dir: Path, tmp_path: Path):
    async with running_bot(api, archive_dir, tmp_path / "data", admin_ids=frozenset({999})) as harness:
        yield harness


def button(sent, label_part: str) -> dict:
    return next(b for b in sent.buttons if label_part in b["text"])


async def test_start_help_and_command_menu(bot: Harness, api: FakeBotAPI):
    start = await bot.ask("/start")
    assert "/search 主题教育" in start.visible and "/range 2019-11-01 2019-11-30" in start.visible
    assert "69" in start.visible  # posts in the archive
    english = await bot.ask("/help", chat_id=112, lang="en-US")
    assert "search" in english.visible.lower() and "posts" in english.visible
    menus = {c.params.get("language_code"): c.params["commands"] for c in api.of("setMyCommands")}
    assert set(menus) == {None, "zh", "en"}
    assert {c["command"] for c in menus["en"]} >= {"search", "range", "latest", "post", "subscribe", "help"}
    assert menus["zh"][0]["description"] == "搜索文章" and menus["en"][0]["description"] == "Search posts"


async def test_search_finds_the_seed_post_with_bold_matches_and_link(bot: Harness):
    sent = await bot.ask("/search 主题教育 since:2019-11-13 until:2019-11-13")
    assert sent.params["parse_mode"] == "HTML"
    assert sent.params["link_preview_options"] == {"is_disabled": True}
    assert f'href="{SEED_URL}"' in sent.text
    assert "<b>主题</b>" in sent.text or "<b>主题教育</b>" in sent.text
    assert "学校召开主题教育整改落实推进会" in sent.visible and "2019-11-13" in sent.visible


async def test_paging_forward_and_back_edits_the_same_message(bot: Harness):
    sent = await bot.ask("/search 教育")
    first_page = sent.visible
    nav = button(sent, "/")
    assert nav["text"].startswith("1/")
    pages = int(nav["text"].split("/")[1])
    assert pages >= 13
    await bot.press(sent, button(sent, "▶")["callback_data"])
    page2 = bot.current(sent)
    assert page2.visible != first_page and button(page2, "/")["text"] == f"2/{pages}"
    assert "6. " in page2.visible
    await bot.press(page2, button(page2, "◀")["callback_data"])
    again = bot.current(sent)
    assert button(again, "/")["text"] == f"1/{pages}" and again.visible == first_page
    for b in again.buttons:
        assert len(b["callback_data"].encode()) <= 64


async def test_long_query_buttons_stay_under_64_bytes_and_still_work(bot: Harness):
    query = "教育 " + " ".join(["南开大学主题教育"] * 12)
    sent = await bot.ask(f"/search {query[:250]}")
    data = button(sent, "▶")["callback_data"]
    assert len(data.encode()) <= 64 and data.startswith("k|")  # the query is kept in the store
    await bot.press(sent, data)
    assert button(bot.current(sent), "/")["text"].startswith("2/")


async def test_details_button_and_post_command(bot: Harness):
    sent = await bot.ask("/search 主题教育整改")
    detail = button(sent, "1")
    before = len(bot.api.sent_to(111))
    await bot.press(sent, detail["callback_data"])
    shown = await bot.api.wait_for(lambda: len(bot.api.sent_to(111)) > before and bot.api.sent_to(111)[before])
    assert "732b943ded78f99c9f130328fe20b0b3" in shown.visible and SEED_URL in shown.text
    direct = await bot.ask("/post 732b943ded78f99c9f130328fe20b0b3")
    assert direct.visible == shown.visible
    missing = await bot.ask("/post no-such-post")
    assert "找不到" in missing.visible
    usage = await bot.ask("/post")
    assert "/post" in usage.visible


async def test_forged_and_stale_buttons_get_a_polite_answer(bot: Harness):
    sent = await bot.ask("/search 教育")
    replies = len(bot.api.of("sendMessage")) + len(bot.api.of("editMessageText"))
    for data in ("garbage", "k|doesnotexist", "g|search|x|教育", "g|nope|2|教育", "u|abc", "d|", "\u2603" * 10,
                 "g|search|教育|²", "u|²", "g|latest|5|٣"):
        answer = await bot.press(sent, data)  # returns once the bot is done with the press
        assert answer.get("text") == "这个按钮已过期，请重新搜索。", data
    assert len(bot.api.of("sendMessage")) + len(bot.api.of("editMessageText")) == replies  # no message, no edit


async def test_no_results_and_empty_search(bot: Harness):
    nothing = await bot.ask("/search 量子纠缠黑洞")
    assert "没有找到" in nothing.visible and "减少关键词" in nothing.visible
    empty = await bot.ask("/search")
    assert "想搜索什么" in empty.visible


@pytest.mark.parametrize("query", [
    "😀🎉 教育",
    "教" * 5000,
    "，。！？……——",
    "'; DROP TABLE chats; --",
    "<b>教育</b> & <script>alert(1)</script>",
    "since:2019-13-45 教育",
    '"未闭合的引号 教育',
])
async def test_odd_input_gets_a_clear_answer(bot: Harness, query: str):
    sent = await bot.ask(f"/search {query}")
    assert sent.visible and not sent.visible.startswith("抱歉")  # no apology: nothing crashed
    parse_html(sent.text)
    assert utf16_len(sent.visible) <= 4096
    plain = await bot.ask(query[:4000])
    assert plain.visible and not plain.visible.startswith("抱歉")


async def test_store_is_intact_after_sql_like_input(bot: Harness):
    await bot.ask("/subscribe '); DELETE FROM subscriptions; --")
    listing = await bot.ask("/subscriptions")
    assert "DELETE FROM subscriptions" in listing.visible


async def test_range_forms_and_bad_dates(bot: Harness):
    full = await bot.ask("/range 2019-11-01 2019-11-30")
    assert "2019-11" in full.visible and "▶" in [b["text"] for b in full.buttons]
    month = await bot.ask("/range 2019年11月")
    assert button(month, "/")["text"] == button(full, "/")["text"]
    short = await bot.ask("/range 2019-11")
    assert button(short, "/")["text"] == button(full, "/")["text"]
    ranked = await bot.ask("/range 2019-11-01 2019-11-30 主题教育整改")
    assert "学校召开主题教育整改落实推进会" in ranked.visible.split("\n\n")[1]
    bad = await bot.ask("/range 2019-99-99 2019-11-30")
    assert "无法识别日期" in bad.visible and "2019-11-01" in bad.visible
    usage = await bot.ask("/range")
    assert "用法" in usage.visible


async def test_latest(bot: Harness):
    sent = await bot.ask("/latest")
    assert sent.visible.count("📅") == 5
    three = await bot.ask("/latest 3")
    assert three.visible.count("📅") == 3
    for bad in ("lots", "²", "0", "21", "-3"):
        assert (await bot.ask(f"/latest {bad}")).visible == "用法：/latest [数量]，数量 1–20", bad


async def test_english_user_gets_english(bot: Harness):
    sent = await bot.ask("/search 量子纠缠黑洞", lang="en")
    assert "Nothing found" in sent.visible
    found = await bot.ask("/search 教育", lang="en-GB")
    assert "results" in found.visible and "Details" in button(found, "1")["text"]


async def test_group_answers_commands_only(bot: Harness, api: FakeBotAPI):
    group = -1001
    before = len(api.sent_to(group))
    ignored = [api.message(group, "教育", chat_type="supergroup", user_id=5),
               api.message(group, "/search@someotherbot 教育", chat_type="supergroup", user_id=5)]
    sent = await bot.ask(f"/search@{api.username} 教育", chat_id=group, chat_type="supergroup", user_id=5)
    for update in ignored:
        await bot.settled(update)
    assert len(api.sent_to(group)) == before + 1
    assert "教育" in sent.visible


async def test_inline_mode_pages_with_next_offset(bot: Harness, api: FakeBotAPI):
    before = len(api.of("answerInlineQuery"))
    api.inline("教育")
    first = (await api.answer("answerInlineQuery", before)).params
    assert len(first["results"]) == 50 and first["next_offset"] == "50"
    assert first["cache_time"] <= 300
    article = first["results"][0]
    assert article["type"] == "article" and article["description"].startswith("2019-")
    assert article["input_message_content"]["parse_mode"] == "HTML"
    api.inline("教育", offset="50")
    second = (await api.answer("answerInlineQuery", before + 1)).params
    assert 0 < len(second["results"]) <= 50 and not second.get("next_offset")
    assert not {r["id"] for r in first["results"]} & {r["id"] for r in second["results"]}
    api.inline("*&^%$")
    odd = (await api.answer("answerInlineQuery", before + 2)).params
    assert odd["results"] == [] and odd["button"]["start_parameter"] == "help"


async def test_long_posts_fit_in_one_message(api: FakeBotAPI, content: Path, tmp_path: Path):
    for i in range(6):
        write_post(content, f"long/{i}.md", "超长标题" * 120 + f" {i}", ("教育改革与发展。" * 400 + "\n") * 3,
                   urlname=f"long-{i}", tags=[f"标签{j}" for j in range(30)], categories=["分类" * 40])
    async with running_bot(api, content, tmp_path / "data") as bot:
        sent = await bot.ask("/search 教育改革")
        assert utf16_len(sent.visible) <= 4096
        parse_html(sent.text)
        detail = await bot.ask("/post long-1")
        assert utf16_len(detail.visible) <= 4096


async def test_a_failing_handler_is_logged_and_the_user_gets_an_apology(bot: Harness, monkeypatch, caplog):
    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(bot.bot.dialog, "search", explode)
    sent = await bot.ask("/search 教育")
    assert sent.visible.startswith("抱歉")
    assert any("boom" in (r.exc_text or "") or (r.exc_info and "boom" in str(r.exc_info[1])) for r in caplog.records)
    monkeypatch.undo()
    assert "教育" in (await bot.ask("/search 教育")).visible  # still running


async def test_admin_commands(bot: Harness):
    refused = await bot.ask("/stats")
    assert "管理员" in refused.visible
    stats = await bot.ask("/stats", chat_id=999)
    assert "文章 69" in stats.visible and "上次扫描" in stats.visible
    reloaded = await bot.ask("/reload", chat_id=999)
    assert "已扫描" in reloaded.visible


@pytest.mark.parametrize("command", ["/search 0000年", "/search since:9999-12-31 教育", "/range 0000-05",
                                     "/range 2019-11-01..9999年", "/range 9999年 2019年", "/subscribe 教育 9999年"])
async def test_dates_at_the_edge_of_the_calendar_get_the_bad_date_answer(bot: Harness, command: str):
    sent = await bot.ask(command)
    assert sent.visible.startswith("无法识别日期“"), sent.visible


async def test_inline_and_paging_with_edge_dates_answer_politely(bot: Harness, api: FakeBotAPI):
    before = len(api.of("answerInlineQuery"))
    api.inline("教育 9999年")
    answer = (await api.answer("answerInlineQuery", before)).params
    assert answer["results"] == [] and answer["button"]["text"].startswith("无法识别日期")
    sent = await bot.ask("/search 教育")
    pressed = await bot.press(sent, "g|search|since:9999-12-31|2")
    assert pressed == {"callback_query_id": pressed["callback_query_id"]}  # answered, nothing to say…
    assert bot.current(sent).visible.startswith("无法识别日期")  # …and the message says what is wrong


@pytest.mark.parametrize("query", ["½", "¼", "℅", '"½"'])
async def test_characters_without_word_content_get_the_no_searchable_words_answer(bot: Harness, query: str):
    sent = await bot.ask(f"/search {query}")
    assert sent.visible == "这个查询里没有可搜索的词（只有标点或常用虚词）。请换几个关键词。"


async def test_a_question_is_answered_first_and_dates_are_shown_as_understood(bot: Harness):
    sent = await bot.ask("南开大学在哪里召开了主题教育整改落实推进会？")
    first, _, rest = sent.visible.partition("\n\n")
    assert first.startswith("💡 ") and "八里台校区省身楼" in first and "\n—— 【不忘初心 牢记使命】学校召开主题教育整改落实推进会" in first
    assert sent.text.startswith("💡 ") and "<b>南开大学</b>" in sent.text.split("\n")[0]
    assert f'<a href="{SEED_URL}">' in sent.text.split("\n\n")[0]
    assert rest.startswith("🔎 南开大学在哪里召开了主题教育整改落实推进会？：共") and utf16_len(sent.visible) <= 4096
    dated = await bot.ask("2019年11月有哪些关于主题教育的新闻？")
    assert dated.visible.split("\n")[1] == "📅 2019-11-01 – 2019-11-30" and not dated.visible.startswith("💡")


async def test_newest_alone_lists_the_latest_posts(bot: Harness):
    newest = await bot.ask("/search 最新")
    latest = await bot.ask("/latest")
    assert newest.visible.split("\n\n")[1:] == latest.visible.split("\n\n")[1:]


async def test_subscriptions_refuse_relative_dates(bot: Harness):
    sent = await bot.ask("/subscribe 上个月 教育")
    assert sent.visible.startswith("订阅不能用相对日期（“上个月 教育”会随时间变化）")
    assert bot.store.count_subscriptions(111) == 0
