"""``archive-bot chat``: the bot's conversation in the terminal, for people without a token."""

from __future__ import annotations


import sys
from typing import TextIO

from .dialog import Dialog, Who
from .render import Action, Message, PlainFormat
from .service import ArchiveService, user_number

PROMPT = "> "
HELP = "Commands: /search QUERY, /range FROM TO [QUERY], /latest [N], /post ID, /help, /quit. A plain line searches; a number presses a button."


def _show(message: Message, out: TextIO) -> list[Action]:
    print(message.text, file=out)
    actions: list[Action] = []
    labels: list[str] = []
    for row in message.buttons:
        for button in row:
            if button.action.kind == "noop":
                labels.append(f"[{button.label}]")
                continue
            actions.append(button.action)
            labels.append(f"{len(actions)}) {button.label}")
    if labels:
        print("   " + "   ".join(labels), file=out)
    print(file=out)
    return actions


def run_chat(service: ArchiveService, lang: str = "zh", stdin: TextIO = sys.stdin, out: TextIO = sys.stdout) -> None:
    """Read commands from ``stdin`` until /quit or end of input; answer like the bot would."""
    dialog = Dialog(service, PlainFormat(color=out.isatty()))
    who = Who(chat_id=0, chat_type="private", lang=lang)
    print(HELP, file=out)
    actions: list[Action] = []
    while True:
        if stdin.isatty():
            print(PROMPT, end="", file=out, flush=True)
        line = stdin.readline()
        if not line:
            break
        line = line.strip()
        if not line:
            continue
        if line in ("/quit", "/exit", "q"):
            break
        choice = user_number(line)
        if choice is not None and actions:
            if not 1 <= choice <= len(actions):
                print(f"Choose 1–{len(actions)}.", file=out)
                continue
            message = dialog.action(who, actions[choice - 1])
        elif line.startswith("/"):
            name, _, rest = line[1:].partition(" ")
            name = name.split("@")[0].lower()
            if name in ("subscribe", "subscriptions", "unsubscribe"):
                print("Subscriptions need the Telegram bot (archive-bot run).", file=out)
                continue
            message = dialog.command(who, name, rest)
        else:
            message = dialog.search(who, line)
        if message is not None:
            actions = _show(message, out)



