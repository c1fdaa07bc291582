"""Hostile input and hostile neighbours: a second process at the index, odd file names, link
loops, damaged index data, oversized files, an unreachable Bot API. Each test fails on the
code before the fix it guards."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from retrieval import Archive, ArchiveError
from retrieval.analyze import _read
from retrieval.loader import MAX_POST_BYTES
from retrieval.storage import MANIFEST, IndexDir, _crc

from conftest import ENV, write_post


def snapshot(archive: Archive) -> list:
    return [(h.post.id, round(h.score, 9)) for h in archive.search("会议 南开 人工智能", limit=20).hits]


def cli(*args: str, cwd: Path, env: dict | None = None, timeout: float = 120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=cwd, env=env or ENV, capture_output=True,
                          timeout=timeout, **kw)


# ---- one writer, many readers ---------------------------------------------------------------
PROCESS = textwrap.dedent("""
    import sys
    from pathlib import Path
    from retrieval import Archive
    content, index, role = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]

    def say(word):
        print(word, flush=True)

    def wait():
        sys.stdin.readline()

    archive = Archive.open(content, index, settle_seconds=0)
    say("read-only" if archive.read_only else "writer")
    wait()
    if role == "bot":  # adds a long post and saves it, then reads it back from its mapping
        (content / "long.md").write_text("---\\ntitle: 长文\\nurlname: long\\n---\\n" + "很长的正文。" * 40000, "utf-8")
        archive.refresh()
        say("saved")
        wait()
        body = archive.get("long").body
        say(f"read {len(body)} {archive.search('很长').total}")
        wait()
        archive.refresh()
        say(f"sees {archive.get('short') is not None}")
    else:  # a CLI-like second process that opened the index before the bot's save, then adds a post
        (content / "short.md").write_text("---\\ntitle: 短\\nurlname: short\\n---\\n短。\\n", "utf-8")
        archive.refresh()
        say(f"added {archive.get('short') is not None}")
""")


class Child:
    """A Python process running PROCESS, driven line by line."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", PROCESS, *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)

    def read(self) -> str:
        line = self.proc.stdout.readline().strip()  # type: ignore[union-attr]
        assert line, f"child ended: {self.proc.wait()} {self.proc.stderr.read()[-2000:]}"  # type: ignore[union-attr]
        return line

    def go(self) -> None:
        self.proc.stdin.write("\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]

    def finish(self) -> int:
        self.proc.stdin.close()  # type: ignore[union-attr]
        return self.proc.wait(60)


def test_a_second_process_never_writes_under_a_running_writer(content: Path, tmp_path: Path):
    index = tmp_path / "index"
    Archive.open(content, index).close()
    bot = Child(str(content), str(index), "bot")
    assert bot.read() == "writer"
    other = Child(str(content), str(index), "cli")  # opens the index before the bot's next save
    assert other.read() == "read-only"
    bot.go()
    assert bot.read() == "saved"
    other.go()
    assert other.read() == "added True"  # it sees its post, in memory
    assert other.finish() == 0
    bot.go()
    assert bot.read() == "read 240000 1"  # before the fix: killed by SIGBUS here (-7)
    bot.go()
    assert bot.read() == "sees True"
    assert bot.finish() == 0
    with Archive.open(content, index, access="read") as reopened:
        assert {"long", "short"} <= set(reopened.post_ids())


def test_index_command_waits_for_the_writer(content: Path, tmp_path: Path):
    data = tmp_path / "data"
    env = {**ENV, "ARCHIVE_CONTENT_DIR": str(content), "ARCHIVE_DATA_DIR": str(data)}
    holder = Archive.open(content, data / "index")
    assert not holder.read_only
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "index"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    waiting = proc.stderr.readline()  # type: ignore[union-attr]
    assert "the index is being written by pid" in waiting and "waiting for it to finish" in waiting
    assert proc.poll() is None
    holder.close()
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "7 posts indexed" in out


def test_lookups_next_to_a_writer_read_the_index(content: Path, tmp_path: Path):
    index = tmp_path / "index"
    with Archive.open(content, index) as writer:
        reader = Archive.open(content, index)
        assert not writer.read_only and reader.read_only
        assert snapshot(reader) == snapshot(writer)
    assert not Archive.open(content, index).read_only  # the lock went with close()


def test_a_reader_racing_a_commit_reads_the_new_manifest(content: Path, tmp_path: Path, monkeypatch, caplog):
    index = tmp_path / "index"
    with Archive.open(content, index, settle_seconds=0) as writer:
        stale = json.loads((index / MANIFEST).read_text())
        for n in range(2):  # two commits later the stale manifest's own files are gone
            write_post(content, f"race/{n}.md", f"竞态{n}", "内容。", urlname=f"race{n}")
            writer.refresh()
        expected = snapshot(writer)
    assert not (index / stale["files"]["live"]["name"]).exists()
    real = IndexDir.read_manifest
    calls = []

    def racing(self):  # the first read sees the manifest as it was just before the commits
        calls.append(1)
        if len(calls) == 1:
            self.manifest = stale
            return stale
        return real(self)

    monkeypatch.setattr(IndexDir, "read_manifest", racing)
    caplog.set_level("INFO")
    reader = Archive.open(content, index, access="read")
    assert snapshot(reader) == expected
    assert not any("building the index" in r.getMessage() for r in caplog.records)  # no 30 s rebuild


# ---- damaged index data ---------------------------------------------------------------------
def rewrite(index: Path, key: str, data: bytes) -> None:
    """Replace one indexed file's bytes and make the manifest's checksum agree."""
    manifest = json.loads((index / MANIFEST).read_text())
    entry = manifest["files"][key]
    (index / entry["name"]).write_bytes(data)
    entry["size"], entry["crc"] = len(data), _crc(data)
    (index / MANIFEST).write_text(json.dumps(manifest))


def npy(arr: np.ndarray) -> bytes:
    from io import BytesIO

    buf = BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def float_array(index: Path, key: str) -> bytes:
    manifest = json.loads((index / MANIFEST).read_text())
    return npy(np.load(index / manifest["files"][key]["name"]).astype(np.float64))


@pytest.mark.parametrize("damage", ["size_is_text", "float_gap_starts", "terms_unsorted", "files_row_types", "journal_list"])
def test_well_checksummed_nonsense_is_rebuilt(content: Path, tmp_path: Path, damage: str, caplog):
    index = tmp_path / "index"
    with Archive.open(content, index, settle_seconds=0) as first:
        expected = snapshot(first)
    manifest = json.loads((index / MANIFEST).read_text())
    if damage == "size_is_text":
        manifest["files"]["main.gaps"]["size"] = "abc"
        (index / MANIFEST).write_text(json.dumps(manifest))
    elif damage == "float_gap_starts":
        rewrite(index, "main.gap_start", float_array(index, "main.gap_start"))
    elif damage == "terms_unsorted":  # the hash index of the vocabulary out of order: lookups would miss
        rewrite(index, "terms.hashes", npy(np.load(index / manifest["files"]["terms.hashes"]["name"])[::-1]))
    elif damage == "files_row_types":
        rewrite(index, "files.rare", json.dumps({"0": [7, "reason", "not a list", "soon", None]}).encode())
    else:
        rewrite(index, "journal", b"[]")
    caplog.set_level("WARNING")
    rebuilt = Archive.open(content, index, settle_seconds=0)
    assert snapshot(rebuilt) == expected
    assert any("building the index" in r.getMessage() for r in caplog.records)


def test_an_index_path_that_is_a_file_is_a_clear_error(content: Path, tmp_path: Path):
    (tmp_path / "index").write_text("not a directory")
    with pytest.raises(ArchiveError, match="is a file, not a directory"):
        Archive.open(content, tmp_path / "index")
    result = cli("stats", cwd=tmp_path, env={**ENV, "ARCHIVE_CONTENT_DIR": str(content), "ARCHIVE_DATA_DIR": "."})
    assert result.returncode == 2
    assert result.stderr.decode().strip() == "archive-bot: the index directory index is a file, not a directory"


# ---- file names, links, sizes, dates ----------------------------------------------------------
def test_a_file_name_that_is_not_utf8_is_skipped_and_the_rest_kept(content: Path, tmp_path: Path):
    bad = os.path.join(os.fsencode(content), b"bad-\xff\xfe.md")
    with open(bad, "wb") as fh:
        fh.write("---\ntitle: 坏名字\nurlname: bad-name\n---\n正文。\n".encode())
    os.mkdir(os.path.join(os.fsencode(content), b"dir-\xff"))
    archive = Archive.open(content, tmp_path / "index", settle_seconds=0)
    assert len(archive) == 7 and archive.get("bad-name") is None
    assert archive.stats().skipped == {
        "bad-\\xff\\xfe.md": "file name is not valid UTF-8 (rename it to index it)",
        "dir-\\xff/": "file name is not valid UTF-8 (rename it to index it)",
    }
    archive.close()
    env = {**ENV, "ARCHIVE_CONTENT_DIR": str(content), "ARCHIVE_DATA_DIR": str(tmp_path / "data")}
    for args in (["stats"], ["search", "主题教育"], ["search", "--no-index", "主题教育"], ["index"]):
        result = cli(*args, cwd=tmp_path, env=env)
        assert result.returncode == 0, (args, result.stderr[-800:])
    assert "bad-\\xff\\xfe.md: file name is not valid UTF-8" in cli("stats", cwd=tmp_path, env=env).stdout.decode()


def test_a_link_loop_adds_nothing(content: Path):
    os.symlink(".", content / "loop")
    os.symlink("../2019", content / "misc" / "again")
    archive = Archive.open(content, settle_seconds=0)
    assert len(archive) == 7 and archive.stats().skipped == {}


def test_linked_directories_are_followed_once(content: Path, tmp_path: Path):
    elsewhere = tmp_path / "elsewhere"
    write_post(elsewhere, "linked.md", "链接目录中的文章", "正文。", urlname="linked")
    os.symlink(elsewhere, content / "link")
    archive = Archive.open(content, settle_seconds=0)
    assert archive.get("linked").path == "link/linked.md" and len(archive) == 8


def test_a_duplicate_takes_over_when_its_owner_goes(content: Path, tmp_path: Path):
    original = content / "2019/2019-11-20-sports.md"
    (content / "copy.md").write_bytes(original.read_bytes().replace("三枚金牌".encode(), "复制的金牌".encode()))
    archive = Archive.open(content, tmp_path / "index", settle_seconds=0)
    assert "duplicate id" in archive.stats().skipped["copy.md"]
    original.unlink()
    result = archive.refresh()
    assert result.removed == ["sports-2019-11-20"] and result.added == ["sports-2019-11-20"]
    assert archive.get("sports-2019-11-20").path == "copy.md" and archive.stats().skipped == {}
    archive.close()
    assert Archive.open(content, tmp_path / "index").get("sports-2019-11-20").path == "copy.md"


def test_an_impossible_date_keeps_the_post_undated(content: Path):
    write_post(content, "odd-date.md", "日期不存在的文章", "正文。", date="2019-13-45", urlname="odd-date")
    archive = Archive.open(content, settle_seconds=0)
    assert archive.get("odd-date").date is None
    assert archive.stats().warnings["odd-date.md"] == ["unreadable date '2019-13-45'", "undated: excluded from date filters"]


SIZE_LIMITED = textwrap.dedent("""
    import resource, sys
    from pathlib import Path
    from retrieval.analyze import Setup, analyze
    from retrieval.tokenizer import Tokenizer
    limit = 1536 * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    result = analyze(Path(sys.argv[1]), "huge.md", Setup("Asia/Shanghai"), Tokenizer())
    print(result.reason)
""")


def test_an_oversized_file_is_skipped_without_reading_it(tmp_path: Path):
    huge = tmp_path / "huge.md"
    with huge.open("wb") as fh:
        fh.write(b"---\ntitle: x\n---\n")
        fh.truncate(3 * 1024 ** 3)  # 3 GiB, sparse: reading it whole needs more memory than allowed
    result = subprocess.run([sys.executable, "-c", SIZE_LIMITED, str(huge)], env=ENV, capture_output=True,
                            text=True, timeout=120)
    assert (result.returncode, result.stdout.strip()) == (0, "file larger than 5 MiB"), result.stderr[-800:]


NO_MAIN_GUARD = textwrap.dedent("""
    import sys
    from retrieval import Archive
    archive = Archive.open(sys.argv[1], None, workers=2, settle_seconds=0)
    print(len(archive), archive.search("教育").total)
""")


def test_a_script_without_a_main_guard_can_build_a_large_archive(tmp_path: Path):
    for i in range(260):
        write_post(tmp_path / "posts", f"p{i}.md", f"文章{i}", f"第{i}篇，关于教育。", urlname=f"p{i}")
    script = tmp_path / "script.py"
    script.write_text(NO_MAIN_GUARD)
    result = subprocess.run([sys.executable, str(script), str(tmp_path / "posts")], env=ENV, capture_output=True,
                            text=True, timeout=300, cwd=tmp_path)
    assert (result.returncode, result.stdout.strip()) == (0, "260 260"), result.stderr[-1500:]


# ---- the command line -----------------------------------------------------------------------
def test_control_characters_never_reach_the_terminal(content: Path, tmp_path: Path):
    (content / "esc.md").write_text('---\ntitle: "\\e]0;pwned\\a标题\\e[2J教育"\nurlname: esc\n---\n正文\x1b[31m教育\x9b。\n')
    bad = content / "bad\x1b[2Jname.md"
    bad.write_text("no front matter")
    env = {**ENV, "ARCHIVE_CONTENT_DIR": str(content), "ARCHIVE_DATA_DIR": str(tmp_path / "data")}
    found = cli("search", "教育", cwd=tmp_path, env=env).stdout.decode()
    stats = cli("stats", cwd=tmp_path, env=env).stdout.decode()
    assert "]0;pwned标题[2J教育" in found and "bad[2Jname.md" in stats
    for out in (found, stats):
        assert not any(ch in out for ch in "\x1b\x07\x9b")


def test_a_closed_pipe_ends_search_quietly(content: Path, tmp_path: Path):
    for i in range(400):
        write_post(content, f"many/{i}.md", f"教育{i}", "教育。" * 50, urlname=f"many{i}")
    env = {**ENV, "ARCHIVE_CONTENT_DIR": str(content), "ARCHIVE_DATA_DIR": str(tmp_path / "data")}
    cli("index", cwd=tmp_path, env=env)
    result = subprocess.run(f"{sys.executable} -m bot.cli search 教育 --json --limit 100 | head -c 10",
                            shell=True, cwd=tmp_path, env=env, capture_output=True, timeout=120)
    assert result.stdout == b'{"id": "ma' and result.stderr == b""


@pytest.mark.parametrize("limit", ["0", "-5", "²", "101"])
def test_bad_limits_are_refused(content: Path, tmp_path: Path, limit: str):
    result = cli("search", "教育", f"--limit={limit}", cwd=tmp_path,
                 env={**ENV, "ARCHIVE_CONTENT_DIR": str(content), "ARCHIVE_DATA_DIR": str(tmp_path / "d")})
    assert result.returncode == 2
    assert f"argument --limit: must be a whole number from 1 to 100, not '{limit}'" in result.stderr.decode()


def test_old_button_payloads_are_pruned(tmp_path: Path):
    from bot.store import PAYLOAD_TTL, PRUNE_EVERY, SubscriberStore

    store = SubscriberStore(tmp_path / "s.sqlite3")
    start = 1_700_000_000.0
    old = store.put_payload("old", now=start)
    recent = store.put_payload("recent", now=start + PAYLOAD_TTL - 10)
    store.put_payload("new", now=start + PAYLOAD_TTL + PRUNE_EVERY)
    assert store.get_payload(old) is None and store.get_payload(recent) == "recent"


async def test_run_waits_for_an_unreachable_bot_api(content: Path, tmp_path: Path):
    import socket

    from fake_bot_api import FakeBotAPI

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    api = FakeBotAPI()
    log = tmp_path / "bot.log"
    env = {**ENV, "TELEGRAM_BOT_TOKEN": api.token, "TELEGRAM_API_BASE_URL": f"http://127.0.0.1:{port}/bot",
           "ARCHIVE_CONTENT_DIR": str(content), "ARCHIVE_DATA_DIR": str(tmp_path / "data")}
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "run"], cwd=tmp_path, env=env, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 60
        while log.read_text().count("cannot reach the Telegram Bot API") < 2:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.1)
        await api.start(port)
        await api.wait_for(lambda: "Application started" in log.read_text(), timeout=60)  # after post_init
        assert len(api.of("setMyCommands")) == 3
    finally:
        proc.terminate()  # PTB stops on SIGTERM; the fake API must keep answering meanwhile
        await asyncio.to_thread(proc.wait, 30)
        await api.stop()
    text = log.read_text()
    assert "Traceback" not in text and api.token not in text
    assert f"cannot reach the Telegram Bot API at http://127.0.0.1:{port}/bot" in text


@pytest.mark.parametrize("extra, read_whole", [(4096, True), (MAX_POST_BYTES, False)])
def test_a_file_that_grows_after_its_stat_is_read_to_its_end_or_to_the_limit(tmp_path: Path, monkeypatch,
                                                                              extra: int, read_whole: bool):
    """The read asks for the size the stat gave; a file longer by then (being written) is read
    on to its end, and past the size limit it is refused, not cut."""
    grown = tmp_path / "grown.md"
    data = b"---\ntitle: x\n---\n" + b"x" * (100 + extra)
    grown.write_bytes(data)
    real_fstat = os.fstat

    def stale_fstat(fd: int) -> os.stat_result:  # the size when the stat was taken: 100 bytes
        st = real_fstat(fd)
        return os.stat_result((*st[:6], 100, *st[7:]))

    monkeypatch.setattr(os, "fstat", stale_fstat)
    st, read = _read(grown)
    assert st.st_size == 100
    assert read == (data if read_whole else None)
