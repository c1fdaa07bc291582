"""Shared fixtures: the fixture archive copied to a temporary directory, malformed files, helpers."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from fake_bot_api import FakeBotAPI

FIXTURES = Path(__file__).parent / "fixtures" / "posts"
REPO = Path(__file__).resolve().parent.parent
#: The environment of a child Python process that imports the project.
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OPENBLAS_NUM_THREADS": "1"}

MALFORMED: dict[str, bytes] = {
    "bad/bad-yaml.md": b"---\ntitle: [unclosed\ndate: 2019-01-01\n---\nbody\n",
    "bad/latin1.md": "---\ntitle: caf\xe9\n---\nbody caf\xe9\n".encode("latin-1"),
    "bad/empty.md": b"",
    "bad/binary.md": b"---\ntitle: x\n---\n\x00\x01\x02\x03binary",
    "bad/list-front-matter.md": b"---\n- a\n- b\n---\nbody\n",
    "bad/title-is-list.md": "---\ntitle:\n- 一\n- 二\n---\n正文\n".encode(),
    "bad/no-front-matter.md": "只有正文，没有 front matter。\n".encode(),
}


@pytest.fixture
def content(tmp_path: Path) -> Path:
    """A writable copy of the fixture posts."""
    target = tmp_path / "content"
    shutil.copytree(FIXTURES, target)
    return target


@pytest.fixture
def content_with_malformed(content: Path) -> Path:
    """The fixture posts plus one file of each malformed kind."""
    for rel, data in MALFORMED.items():
        path = content / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return content


def write_post(directory: Path, name: str, title: str, body: str, date: str | None = "2020-05-01 10:00:00",
               urlname: str | None = None, tags: list[str] | None = None, categories: list[str] | None = None) -> Path:
    """Write a post file with front matter; returns its path."""
    lines = ["---", f"title: {title}"]
    if date:
        lines.append(f"date: {date}")
    if urlname:
        lines.append(f"urlname: {urlname}")
    for key, values in (("tags", tags), ("categories", categories)):
        if values:
            lines.append(f"{key}:")
            lines += [f"- {v}" for v in values]
    lines += ["---", body, ""]
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.fixture
async def api():
    """The fake Telegram Bot API server, on a free port of 127.0.0.1."""
    server = FakeBotAPI()
    await server.start()
    yield server
    await server.stop()
