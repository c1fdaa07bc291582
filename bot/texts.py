"""Every user-facing sentence, in Chinese and English. Placeholders are str.format fields."""

from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "start": {
        "zh": "你好！我可以搜索新闻存档（共 {posts} 篇，{span}）。\n\n"
        "试试：\n{examples}\n\n"
        "查询语法：多个词、\"精确短语\"、-排除词、since:2019-11-01、until:2019-11-30、2019年11月、tag:标签、cat:分类。\n"
        "/subscribe 订阅新文章（可带关键词），/subscriptions 查看订阅。",
        "en": "Hi! I search a news archive ({posts} posts, {span}).\n\n"
        "Try:\n{examples}\n\n"
        "Query syntax: words, \"exact phrase\", -exclude, since:2019-11-01, until:2019-11-30, 2019-11, tag:NAME, cat:NAME.\n"
        "/subscribe to new posts (optionally with keywords), /subscriptions to list them.",
    },
    "span": {"zh": "{first} 至 {last}", "en": "{first} to {last}"},
    "span_empty": {"zh": "暂无文章", "en": "no posts yet"},
    "results_header": {"zh": "🔎 {query}：共 {total} 条结果", "en": "🔎 {query}: {total} results"},
    "range_header": {"zh": "📅 {query}：共 {total} 篇", "en": "📅 {query}: {total} posts"},
    "results_header_about": {"zh": "🔎 {query}：约 {total} 条结果", "en": "🔎 {query}: about {total} results"},
    "range_header_about": {"zh": "📅 {query}：约 {total} 篇", "en": "📅 {query}: about {total} posts"},
    "latest_header": {"zh": "🆕 最新文章", "en": "🆕 Latest posts"},
    "dates_relaxed": {"zh": "📅 没有 {dates} 的文章，以下结果不限日期", "en": "📅 no posts of {dates}; results from any date"},
    "newest_first": {"zh": "🆕 最新的在前", "en": "🆕 newest first"},
    "relative_date": {
        "zh": "订阅不能用相对日期（“{value}”会随时间变化）。请写具体日期，例如 since:2019-11-01，或去掉日期。",
        "en": "A subscription cannot use a relative date (“{value}” changes with time). Write a date such as since:2019-11-01, or leave it out.",
    },
    "no_results": {
        "zh": "没有找到与“{query}”相关的文章。\n试试：减少关键词、换个说法，或去掉日期/标签限制。",
        "en": "Nothing found for “{query}”.\nTry fewer or other words, or remove the date/tag filter.",
    },
    "empty_query": {
        "zh": "想搜索什么？例如：/search 主题教育",
        "en": "What should I search for? For example: /search 主题教育",
    },
    "no_terms": {
        "zh": "这个查询里没有可搜索的词（只有标点或常用虚词）。请换几个关键词。",
        "en": "That query has no searchable words (only punctuation or stop words). Try other keywords.",
    },
    "too_long": {
        "zh": "查询太长了（最多 {max} 个字符），请精简关键词。",
        "en": "The query is too long (at most {max} characters). Please shorten it.",
    },
    "bad_date": {
        "zh": "无法识别日期“{value}”。示例：2019-11-01、2019-11、2019年11月、2019-11-01..2019-11-30",
        "en": "Cannot understand the date “{value}”. Examples: 2019-11-01, 2019-11, 2019年11月, 2019-11-01..2019-11-30",
    },
    "empty_range": {"zh": "日期范围为空：开始日期晚于结束日期。", "en": "The date range is empty: it starts after it ends."},
    "range_usage": {
        "zh": "用法：/range 开始 结束 [关键词]，例如 /range 2019-11-01 2019-11-30 或 /range 2019年11月",
        "en": "Usage: /range FROM TO [QUERY], e.g. /range 2019-11-01 2019-11-30 or /range 2019-11",
    },
    "latest_usage": {"zh": "用法：/latest [数量]，数量 1–{max}", "en": "Usage: /latest [N], N from 1 to {max}"},
    "post_usage": {"zh": "用法：/post 文章ID", "en": "Usage: /post POST_ID"},
    "not_found": {"zh": "找不到这篇文章（可能已被删除）。", "en": "That post was not found (it may have been removed)."},
    "expired": {"zh": "这个按钮已过期，请重新搜索。", "en": "This button has expired; please search again."},
    "error": {"zh": "抱歉，出错了，请稍后再试。", "en": "Sorry, something went wrong. Please try again later."},
    "source": {"zh": "原文", "en": "Source"},
    "site_page": {"zh": "本站", "en": "On the site"},
    "updated": {"zh": "更新于 {date}", "en": "Updated {date}"},
    "no_source": {"zh": "（无链接）", "en": "(no link)"},
    "undated": {"zh": "无日期", "en": "undated"},
    "details": {"zh": "详情", "en": "Details"},
    "id": {"zh": "ID", "en": "ID"},
    "more_omitted": {"zh": "……另有 {n} 条未显示", "en": "… {n} more not shown"},
    # subscriptions
    "subscribed_all": {"zh": "✅ 已订阅全部新文章。", "en": "✅ Subscribed to all new posts."},
    "subscribed": {"zh": "✅ 已订阅：{query}", "en": "✅ Subscribed: {query}"},
    "already_subscribed": {"zh": "已经订阅过了：{query}", "en": "Already subscribed: {query}"},
    "too_many_subs": {
        "zh": "每个聊天最多 {max} 个订阅。请先用 /unsubscribe 删除一些。",
        "en": "A chat can hold at most {max} subscriptions. Remove some with /unsubscribe first.",
    },
    "subs_header": {"zh": "🔔 本聊天的订阅：", "en": "🔔 Subscriptions of this chat:"},
    "subs_none": {
        "zh": "还没有订阅。/subscribe 订阅全部新文章，/subscribe 关键词 只订阅匹配的文章。",
        "en": "No subscriptions yet. /subscribe for all new posts, /subscribe KEYWORDS for matching ones.",
    },
    "sub_all_label": {"zh": "全部新文章", "en": "all new posts"},
    "unsubscribed": {"zh": "已取消 {n} 个订阅。", "en": "Removed {n} subscription(s)."},
    "unsub_usage": {"zh": "用法：/unsubscribe [编号]，编号见 /subscriptions", "en": "Usage: /unsubscribe [N], N from /subscriptions"},
    "unsub_button": {"zh": "❌ 取消 {n}", "en": "❌ Remove {n}"},
    "admins_only": {"zh": "只有群管理员可以修改本群的订阅。", "en": "Only group admins can change this group's subscriptions."},
    "bot_admins_only": {"zh": "这个命令只供机器人管理员使用。", "en": "This command is for the bot's admins only."},
    # channels
    "channel_unknown": {
        "zh": "我看不到频道 {channel}。请把我添加为 {channel} 的管理员（允许发布消息），然后再试。",
        "en": "I can't see the channel {channel}. Add me to {channel} as an administrator with the right to post, then try again.",
    },
    "not_a_channel": {
        "zh": "{channel} 不是频道。群组请在群里直接发送 /subscribe。",
        "en": "{channel} is not a channel. For a group, send /subscribe in the group itself.",
    },
    "channel_admins_only": {
        "zh": "只有 {channel} 的管理员才能修改它的订阅。",
        "en": "Only an administrator of {channel} can do this.",
    },
    "channel_bot_cannot_post": {
        "zh": "请把我添加为 {channel} 的管理员，并允许我发布消息，然后再试。",
        "en": "Add me to {channel} as an administrator with the right to post, then try again.",
    },
    "channel_subscribed_all": {"zh": "✅ {channel} 将收到全部新文章。", "en": "✅ {channel} will get every new post."},
    "channel_subscribed": {"zh": "✅ {channel} 已订阅：{query}", "en": "✅ {channel} subscribed to: {query}"},
    "channel_already": {"zh": "{channel} 已经订阅过了：{query}", "en": "{channel} is already subscribed to: {query}"},
    "channel_unsubscribed": {"zh": "已为 {channel} 取消 {n} 个订阅。", "en": "Removed {n} subscription(s) of {channel}."},
    "channel_unsub_usage": {
        "zh": "用法：/unsubscribe {channel} [编号]，编号见 /subscriptions",
        "en": "Usage: /unsubscribe {channel} [N], N from /subscriptions",
    },
    "channel_private_only": {
        "zh": "请在与我的私聊中为频道设置订阅。",
        "en": "Set up a channel's subscriptions in a private chat with me.",
    },
    "subs_channel_header": {"zh": "📢 频道 {channel} 的订阅：", "en": "📢 Subscriptions of the channel {channel}:"},
    "subs_channel_hint": {"zh": "（/unsubscribe {channel} 编号 取消）", "en": "(/unsubscribe {channel} N removes one)"},
    "channel_lost_rights": {
        "zh": "⚠️ 我已无法在 {channel} 发布消息（{reason}），已暂停向它推送。请重新把我设为 {channel} 的管理员并允许发布消息，然后发送 /subscribe {channel}。",
        "en": "⚠️ I can no longer post to {channel} ({reason}), so its pushes are paused. Make me an administrator of {channel} with the right to post again, then send /subscribe {channel}.",
    },
    "push_single": {"zh": "🆕 新文章", "en": "🆕 New post"},
    "push_digest": {"zh": "🆕 {n} 篇新文章", "en": "🆕 {n} new posts"},
    "push_matched": {"zh": "🔔 订阅：{queries}", "en": "🔔 Subscription: {queries}"},
    "reloaded": {
        "zh": "已扫描：新增 {added}，修改 {changed}，删除 {removed}；推送 {sent} 条。",
        "en": "Scanned: {added} added, {changed} changed, {removed} removed; {sent} messages pushed.",
    },
    "stats": {
        "zh": "📊 文章 {posts}（{span}）\n订阅聊天 {chats}，订阅 {subs}，频道 {channels}\n设置中的频道：{configured}\n已推送 {sent}，失败 {failed}，待发 {pending}\n跳过文件 {skipped}\n上次扫描 {last_scan}（{scan_seconds:.2f} 秒）",
        "en": "📊 Posts {posts} ({span})\nSubscribed chats {chats}, subscriptions {subs}, channels {channels}\nChannels from the settings: {configured}\nPushed {sent}, failed {failed}, pending {pending}\nSkipped files {skipped}\nLast scan {last_scan} ({scan_seconds:.2f} s)",
    },
    "never": {"zh": "尚未扫描", "en": "never"},
    # command descriptions for set_my_commands
    "cmd_search": {"zh": "搜索文章", "en": "Search posts"},
    "cmd_range": {"zh": "按日期范围列出文章", "en": "Posts in a date range"},
    "cmd_latest": {"zh": "最新文章", "en": "Latest posts"},
    "cmd_post": {"zh": "查看文章详情", "en": "Show a post"},
    "cmd_subscribe": {"zh": "订阅新文章", "en": "Subscribe to new posts"},
    "cmd_subscriptions": {"zh": "查看订阅", "en": "List subscriptions"},
    "cmd_unsubscribe": {"zh": "取消订阅", "en": "Unsubscribe"},
    "cmd_help": {"zh": "使用帮助", "en": "Help"},
}


def language(code: str | None) -> str:
    """'en' for English users (language_code en…), Chinese otherwise."""
    return "en" if code and code.lower().startswith("en") else "zh"


def t(lang: str, key: str, **fields: object) -> str:
    """The sentence ``key`` in ``lang`` with its fields filled in."""
    table = TEXTS[key]
    return table.get(lang, table["zh"]).format(**fields)
