"""A build in worker processes, and one that packs its postings into many runs, make exactly
the index a single process makes in one piece: the same term numbers, postings and scores."""

from __future__ import annotations

import gc
import json
import logging
import os
import pickle
import random
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import orjson
import pytest

import retrieval.archive
import retrieval.index
import retrieval.postings
import retrieval.stored
import retrieval.workers
from retrieval import Archive
from retrieval.analyze import POOL_THRESHOLD, Analysis, Setup, WorkerState, analyze_batch, default_workers
from retrieval.docstore import UNDATED, Filed
from retrieval.phrases import text_of
from retrieval.stored import Codec, FrameStore
from retrieval.tokenizer import Tokenizer
from retrieval.storage import MANIFEST

from conftest import ENV, write_post

#: Memory a worker shares with the others, at least: jieba's dictionary is most of it.
SHARED_KB = 40_000

WORDS = ["经济", "发展", "香港", "教育", "科技", "创新", "农业", "改革", "开放", "合作", "会议", "主席",
         "人民", "环境", "保护", "文化", "交流", "城市", "乡村", "医疗"]


@pytest.fixture
def many(tmp_path: Path) -> Path:
    """More posts than the worker pool's threshold, each with its own rare word."""
    rng = random.Random(7)
    root = tmp_path / "many"
    for i in range(POOL_THRESHOLD + 60):
        body = "，".join(rng.choice(WORDS) + rng.choice(WORDS) for _ in range(rng.randint(3, 30)))
        write_post(root, f"p{i:04d}.md", f"{rng.choice(WORDS)}新闻{i}", f"{body}。稀有词{i}号。",
                   date=f"2020-{i % 12 + 1:02d}-{i % 28 + 1:02d} 10:00:00", urlname=f"p{i}",
                   tags=[rng.choice(WORDS)])
    return root


def test_a_worker_sends_what_the_store_files_a_post_under_not_the_post(tmp_path: Path):
    """The id, the date as epoch seconds (in the site's time zone) and the labels' keys, in
    order and once each; the body travels only in the record and the compacted text."""
    dated = write_post(tmp_path, "a.md", "香港经济", "正文。", date="2020-01-02 10:00:00", urlname="hk",
                       tags=["经济", "香港", "经济", "ＨＫ", "hk"], categories=["新闻"])
    undated = write_post(tmp_path, "b.md", "无日期", "正文。", date=None)
    batch = analyze_batch(WorkerState(Setup("Asia/Shanghai"), Tokenizer()), [(str(dated), "a.md"), (str(undated), "b.md")])
    first, second = batch.analyses
    # 10:00 in Shanghai is 02:00 UTC; the labels as the store keys them (NFKC, case-folded), once each
    assert first.filed == Filed("hk", 1577930400, ("经济", "香港", "hk"), ("新闻",))
    assert second.filed == Filed(second.filed.id, UNDATED, (), ())
    record, _, text = first.document.partition(b"\n")  # (raw: the store has no dictionary yet)
    assert not hasattr(first, "post") and first.frame_key is None
    assert orjson.loads(record)["body"] == "正文。" and text == text_of("香港经济", "正文。").encode()
    archive = Archive.open(tmp_path, tmp_path.parent / f"{tmp_path.name}-index", settle_seconds=0)
    assert [hit.post.id for hit in archive.search("tag:Ｈk").hits] == ["hk"]  # filed by its key
    assert archive.get("hk").tags == ("经济", "香港", "ＨＫ", "hk")  # shown as written

    sent = pickle.loads(pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL))
    assert sent.analyses == batch.analyses and sent.analyses[0].document == first.document
    skipped = Analysis("c.md", 3, 4, "d", reason="draft", warnings=["w"], recheck_at=5.0, unpublished=True)
    assert pickle.loads(pickle.dumps(skipped)) == skipped


def fingerprint(archive: Archive) -> tuple:
    index = archive.index
    main = index.main
    return ([index.vocab.string(t) for t in range(len(index.vocab))], main.ptr.tolist(), main.docs.tolist(),
            main.tfs.tolist(), main.flags().tolist(), index.doc_len.tolist(),
            [archive.docs.ids.string(d) for d in range(len(archive.docs))], archive.docs.dates.tolist(),
            {kind: (keys, ptr.tolist(), docs.tolist()) for kind, (keys, ptr, docs) in archive.docs.labels_saved_form().items()})


def test_workers_and_runs_build_the_same_index(many: Path, tmp_path: Path, monkeypatch):
    alone = Archive.open(many, tmp_path / "alone", workers=1, settle_seconds=0)
    pooled = Archive.open(many, tmp_path / "pooled", workers=2, settle_seconds=0)
    monkeypatch.setattr(retrieval.index, "RUN_POSTINGS", 50)  # a run every few posts
    packed = Archive.open(many, tmp_path / "packed", workers=2, settle_seconds=0)
    assert len(alone) == POOL_THRESHOLD + 60
    assert fingerprint(pooled) == fingerprint(alone)
    assert fingerprint(packed) == fingerprint(alone)
    for query in ("经济 发展", "稀有词17号", "香港"):
        ours, theirs = (a.index.score(alone.query_tokens(alone.parse(query))) for a in (packed, alone))
        assert np.array_equal(ours.docs, theirs.docs) and np.array_equal(ours.scores, theirs.scores)
    reopened = Archive.open(many, tmp_path / "packed", settle_seconds=0)
    assert fingerprint(reopened) == fingerprint(alone)


def test_checkpoints_build_the_same_index(many: Path, tmp_path: Path, monkeypatch):
    alone = Archive.open(many, tmp_path / "alone", workers=1, settle_seconds=0)
    monkeypatch.setattr(retrieval.archive, "CHECKPOINT_FILES", 70)  # saved and reloaded three times, then at the end
    monkeypatch.setattr(retrieval.stored, "SPILL_BYTES", 2000)  # the unsaved posts wait in a file
    monkeypatch.setattr(retrieval.postings, "FILE_BACKED_BYTES", 0)  # and the merges write into files,
    monkeypatch.setattr(retrieval.index, "RUN_POSTINGS", 500)  # the first part's runs too
    merge_outputs = []  # (the directory for its file, whether it is one)

    def filled(self, capacity, dtype, spill_dir=None, real=retrieval.postings._Filled.__init__):
        real(self, capacity, dtype, spill_dir)
        merge_outputs.append((spill_dir, self.spilled))

    monkeypatch.setattr(retrieval.postings._Filled, "__init__", filled)
    saves = []
    monkeypatch.setattr(Archive, "_checkpoint", lambda self, real=Archive._checkpoint: (saves.append(len(self)), real(self)))
    pools = []  # the workers are started once and go on across the checkpoints

    def started(self, *args, real=retrieval.workers.WorkerPool.__init__):
        pools.append(args)
        real(self, *args)

    monkeypatch.setattr(retrieval.workers.WorkerPool, "__init__", started)
    checkpointed = Archive.open(many, tmp_path / "checkpointed", workers=2, settle_seconds=0)
    assert saves == [70, 140, 210, POOL_THRESHOLD + 60]
    assert len(pools) == 1
    assert {where for where, _ in merge_outputs} == {tmp_path / "checkpointed"}
    assert sum(in_file for _, in_file in merge_outputs) >= 9  # three outputs a merge
    assert fingerprint(checkpointed) == fingerprint(alone)
    assert [checkpointed.get(p) for p in alone.post_ids()] == [alone.get(p) for p in alone.post_ids()]


def test_workers_compress_the_posts_once_the_store_has_its_dictionary(many: Path, tmp_path: Path, monkeypatch):
    """The store trains its dictionary on a build's first posts (100 here, in the second of
    five batches) and the workers get it: the posts of the batches sent after come as the
    store's frames, byte for byte those the store makes, and read back as a one-process build
    has them."""
    alone = Archive.open(many, tmp_path / "alone", workers=1, settle_seconds=0)
    monkeypatch.setattr(retrieval.stored, "TRAIN_DOCS", 100)
    monkeypatch.setattr(retrieval.workers, "AHEAD", 1)  # the last two batches are sent after it is trained
    made: list[bytes] = []
    monkeypatch.setattr(FrameStore, "append_frames", lambda self, frames, key, real=FrameStore.append_frames: (
        made.extend(frames), real(self, frames, key)))
    pooled = Archive.open(many, tmp_path / "pooled", workers=2, settle_seconds=0)
    posts = len(pooled)
    assert 64 + posts % 64 <= len(made) <= posts - 2 * 64 and posts == POOL_THRESHOLD + 60
    stored = pooled.docs.stored
    assert [stored.frame(doc) for doc in range(posts - len(made), posts)] == made
    codec = Codec(stored.dictionary)
    assert [stored.frame(doc) for doc in range(posts)] == [codec.compress(stored[doc]) for doc in range(posts)]
    assert fingerprint(pooled) == fingerprint(alone)
    assert [pooled.get(p) for p in alone.post_ids()] == [alone.get(p) for p in alone.post_ids()]
    assert list(pooled.docs.texts(list(range(posts)))) == list(alone.docs.texts(list(range(posts))))


def test_workers_import_this_package_whatever_directory_they_start_in(many: Path, tmp_path: Path, monkeypatch,
                                                                       caplog):
    """``python -m`` puts the current directory first on a worker's path: a build started from
    a directory holding another ``retrieval`` must not have its workers import that one (they
    failed, and the build went on reading every file in one process)."""
    decoy = tmp_path / "elsewhere" / "retrieval"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("raise ImportError('not the retrieval package of archive-bot')\n", "utf-8")
    monkeypatch.chdir(decoy.parent)
    caplog.set_level("WARNING")
    archive = Archive.open(many, tmp_path / "index", workers=2, settle_seconds=0)
    assert len(archive) == POOL_THRESHOLD + 60
    assert "indexing worker failed" not in caplog.text


KILLED_MIDWAY = textwrap.dedent("""
    import os, signal, sys
    import retrieval.archive
    from retrieval import Archive
    retrieval.archive.CHECKPOINT_FILES = 100
    seen = 0
    def progress(n, total):
        global seen
        seen += n
        if seen > 150:  # after the first checkpoint, before the second
            os.kill(os.getpid(), signal.SIGKILL)
    Archive.open(sys.argv[1], sys.argv[2], workers=1, settle_seconds=0, progress=progress)
""")


def test_a_build_killed_midway_goes_on_from_its_checkpoint(many: Path, tmp_path: Path, caplog):
    index = tmp_path / "index"
    child = subprocess.run([sys.executable, "-c", KILLED_MIDWAY, str(many), str(index)], env=ENV, timeout=120,
                           capture_output=True, text=True)
    assert child.returncode == -signal.SIGKILL, child.stderr[-800:]
    manifest = json.loads((index / MANIFEST).read_text())
    assert (manifest["building"], manifest["posts"]) == (True, 100)
    caplog.set_level("INFO")
    resumed = Archive.open(many, index, workers=1, settle_seconds=0, sync=False)
    assert "going on with the build" in caplog.text
    assert json.loads((index / MANIFEST).read_text())["building"] is False
    assert fingerprint(resumed) == fingerprint(Archive.open(many, tmp_path / "fresh", workers=1, settle_seconds=0))


@pytest.mark.parametrize("dying", [1, 2])
def test_workers_that_die_end_the_map_with_an_error_not_a_hang(many: Path, dying: int):
    """A worker that dies (here: sent a batch it cannot read, which ends it) ends the map with
    a WorkerError that gives its exit status. With both dead, the batches waiting for a worker
    fail too, rather than waiting for one for ever (a million-post build once hung so)."""
    files = sorted(many.glob("*.md"))[:8]
    good = [[(str(f), f.name)] for f in files]
    error = _map_error(Setup("Asia/Shanghai"), [*good[:2], *[5] * dying, *good[2:]])
    assert error.startswith("an indexing worker failed (exit status 1): EOFError()")


def test_a_pool_closing_kills_a_worker_that_is_stuck(tmp_path: Path, monkeypatch):
    """A worker stuck on a file (a FIFO nobody writes to: its open never returns) cannot hold
    the pool's closing for ever: after CLOSE_WAIT_SECONDS it is killed, the zygote reaps it and
    ends, and the map waiting for it ends with an error."""
    fifo = tmp_path / "stuck.md"
    os.mkfifo(fifo)
    monkeypatch.setattr(retrieval.workers, "CLOSE_WAIT_SECONDS", 1.0)
    pool = retrieval.workers.WorkerPool(2, Setup("Asia/Shanghai"))
    outcome: dict[str, str] = {}

    def run() -> None:
        try:
            list(pool.map([[(str(fifo), fifo.name)]]))
        except retrieval.workers.WorkerError as exc:
            outcome["error"] = str(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while len(pool.pids) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    workers = pool.pids
    zygote = _parent(workers[0])
    pool.close()
    thread.join(30)
    assert not thread.is_alive(), "the map hung"
    assert outcome["error"].startswith("an indexing worker failed (exit status -9)"), outcome
    assert [Path(f"/proc/{pid}").exists() for pid in (*workers, zygote)] == [False, False, False]


def _map_error(setup: object, batches: list) -> str:
    """The WorkerError a two-worker map of ``batches`` ends with; it must end within a minute."""
    outcome: dict[str, str] = {}

    def run() -> None:
        with retrieval.workers.WorkerPool(2, setup) as pool:
            try:
                list(pool.map(batches))
            except retrieval.workers.WorkerError as exc:
                outcome["error"] = str(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "the map hung"
    return outcome["error"]


def test_ctrl_c_is_the_parents_to_act_on_the_workers_go_on(many: Path):
    """Ctrl-C in a terminal reaches the whole process group: the zygote and the workers leave
    it to the parent (which stops the build, and with it them) and finish what they were sent."""
    files = sorted(many.glob("*.md"))[:8]
    with retrieval.workers.WorkerPool(2, Setup("Asia/Shanghai")) as pool:
        first = list(pool.map([[(str(f), f.name)] for f in files[:2]]))
        workers = pool.pids
        for pid in (_parent(workers[0]), *workers):
            os.kill(pid, signal.SIGINT)
        rest = list(pool.map([[(str(f), f.name)] for f in files[2:]]))
    assert [a.rel for b in first + rest for a in b.analyses] == [f.name for f in files]


def test_a_zygote_that_cannot_make_the_workers_state_ends_the_map_with_its_exit_status():
    """The zygote fails before it forks (here: a setup that is not one): the map ends with a
    WorkerError that gives the zygote's exit status, never a hang."""
    error = _map_error("not a setup", [[("a.md", "a.md")]] * 4)
    assert re.match(r"an indexing worker failed \(exit status 1\): (EOFError|BrokenPipeError)", error), error


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _children(pid: int | str) -> list[int]:
    return [int(child) for f in Path(f"/proc/{pid}/task").glob("*/children") for child in f.read_text().split()]


def _workers_of_this_process() -> list[int]:
    """The workers: the children of this process's zygotes (its children that run retrieval.workers)."""
    zygotes = [pid for pid in _children("self") if b"retrieval.workers" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    return [worker for zygote in zygotes for worker in _children(zygote)]


def _memory(pid: int) -> dict[str, int]:
    """A process's /proc/PID/smaps_rollup, in kB."""
    lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
    return {key: int(value.split()[0]) for key, value in (line.split(":", 1) for line in lines)}


def test_the_workers_are_forked_from_one_zygote_and_share_what_it_loaded(many: Path):
    """The zygote loads the segmenter's dictionary (tens of MB) once and forks the workers: in
    each, most of its memory is shared with the other, and when the pool closes, none of them
    is left running."""
    files = sorted(many.glob("*.md"))[:8]
    open_files = len(os.listdir("/proc/self/fd"))
    with retrieval.workers.WorkerPool(2, Setup("Asia/Shanghai")) as pool:
        results = list(pool.map([[(str(f), f.name)] for f in files]))
        workers = pool.pids
        assert sorted(workers) == sorted(_workers_of_this_process()) and len(set(workers)) == 2
        assert {b.source for b in results} == set(workers)
        for pid in workers:
            memory = _memory(pid)
            assert memory["Shared_Dirty"] >= SHARED_KB, memory  # (about 77 MB here; 0 for processes of their own)
            assert memory["Private_Dirty"] < memory["Shared_Dirty"], memory
        zygote = _parent(workers[0])
    assert [Path(f"/proc/{pid}").exists() for pid in (*workers, zygote)] == [False, False, False]
    assert len(os.listdir("/proc/self/fd")) == open_files  # (every pipe closed)


def test_a_pool_that_cannot_start_its_zygote_leaves_no_pipe_open(monkeypatch):
    def no_process(*args, **kwargs):
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(retrieval.workers.subprocess, "Popen", no_process)
    open_files = len(os.listdir("/proc/self/fd"))
    with pytest.raises(retrieval.workers.WorkerError, match="cannot start an indexing worker: .Errno 11."):
        retrieval.workers.WorkerPool(3, Setup("Asia/Shanghai"))
    assert len(os.listdir("/proc/self/fd")) == open_files


def test_a_build_whose_workers_are_killed_goes_on_in_its_own_process(many: Path, tmp_path: Path, monkeypatch,
                                                                      caplog):
    """Both workers killed (as the kernel kills a process for memory) after the first batch:
    the build reads the files not analyzed yet itself, says so, reports each file's progress
    once, and makes the index that one process makes."""
    alone = Archive.open(many, tmp_path / "alone", workers=1, settle_seconds=0)
    # One batch ahead a worker: batches are still to be sent when they die (with more ahead,
    # they could finish all five of this archive first).
    monkeypatch.setattr(retrieval.workers, "AHEAD", 1)
    killed: list[int] = []
    reported: list[int] = []
    warned: list[tuple[str, int]] = []  # (message, files reported when it came)

    def progress(done: int, total: int) -> None:
        reported.append(done)
        if not killed:
            killed.extend(_workers_of_this_process())
            for pid in killed:
                os.kill(pid, signal.SIGKILL)

    def note(record: logging.LogRecord) -> bool:
        warned.append((record.getMessage(), sum(reported)))
        return True

    logger = logging.getLogger("retrieval.analyze")
    logger.addFilter(note)  # (run for the records the level lets through: WARNING, whatever ran before)
    try:
        with caplog.at_level(logging.WARNING, logger="retrieval.analyze"):
            survived = Archive.open(many, tmp_path / "survived", workers=2, settle_seconds=0, progress=progress)
    finally:
        logger.removeFilter(note)
    files = POOL_THRESHOLD + 60
    assert len(killed) == 2 and sum(reported) == files
    [(message, before)] = warned
    assert message.startswith(f"an indexing worker failed (exit status {-signal.SIGKILL})"), message
    assert message.endswith(f"; reading the {files - before} files left in this process") and before >= 64
    assert fingerprint(survived) == fingerprint(alone)
    assert [survived.get(p) for p in alone.post_ids()] == [alone.get(p) for p in alone.post_ids()]


def test_a_build_that_cannot_start_its_workers_goes_on_in_its_own_process(many: Path, tmp_path: Path,
                                                                          monkeypatch, caplog):
    """No process to be had (the fork fails for memory): the build says why and reads every
    file itself."""
    alone = Archive.open(many, tmp_path / "alone", workers=1, settle_seconds=0)

    def no_process(*args, **kwargs):
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(retrieval.workers.subprocess, "Popen", no_process)
    with caplog.at_level(logging.WARNING, logger="retrieval.analyze"):
        fallen_back = Archive.open(many, tmp_path / "fallen-back", workers=2, settle_seconds=0)
    assert [r.getMessage() for r in caplog.records if r.name == "retrieval.analyze"] == [
        "cannot start an indexing worker: [Errno 11] Resource temporarily unavailable; "
        f"reading the {POOL_THRESHOLD + 60} files left in this process"]
    assert fingerprint(fallen_back) == fingerprint(alone)


@pytest.mark.parametrize(("cores", "workers"), [(1, 1), (2, 3), (8, 9)])
def test_a_build_has_a_worker_per_core_and_one_more_but_none_on_one_core(monkeypatch, cores: int, workers: int):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)))
    assert default_workers() == workers


def test_a_build_and_a_large_refresh_collect_garbage_less_often_then_as_before(tmp_path: Path, monkeypatch):
    """While a build or a refresh of many files applies them, the collector's first threshold
    is raised; afterwards (and after a failure) it is what it was, and a small refresh keeps it."""
    content = tmp_path / "content"
    for i in range(3):
        write_post(content, f"p{i}.md", f"新闻{i}", "香港经济。", urlname=f"p{i}")
    before = gc.get_threshold()
    seen: list[int] = []
    real = Archive._apply_batch

    def noting(self, batch, analyses, *args):
        seen.extend([gc.get_threshold()[0]] * len(analyses))
        return real(self, batch, analyses, *args)

    monkeypatch.setattr(Archive, "_apply_batch", noting)
    archive = Archive.open(content, tmp_path / "index", settle_seconds=0)
    assert seen == [retrieval.archive.FEWER_COLLECTIONS_THRESHOLD] * 3 != [before[0]] * 3
    assert gc.get_threshold() == before
    seen.clear()
    write_post(content, "p3.md", "新闻3", "香港经济。", urlname="p3")
    archive.refresh()
    assert seen == [before[0]]  # one file: nothing changed
    monkeypatch.setattr(retrieval.archive, "FEWER_COLLECTIONS_FILES", 2)
    seen.clear()
    for i in (4, 5):
        write_post(content, f"p{i}.md", f"新闻{i}", "香港经济。", urlname=f"p{i}")
    archive.refresh()
    assert seen == [retrieval.archive.FEWER_COLLECTIONS_THRESHOLD] * 2
    assert gc.get_threshold() == before

    def failing(self, *args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Archive, "_apply_batch", failing)
    for i in (6, 7):
        write_post(content, f"p{i}.md", f"新闻{i}", "香港经济。", urlname=f"p{i}")
    with pytest.raises(RuntimeError, match="disk on fire"):
        archive.refresh()
    assert gc.get_threshold() == before


def test_a_build_skips_an_id_taken_in_an_earlier_batch_or_before_a_checkpoint(many: Path, tmp_path: Path,
                                                                                monkeypatch):
    """A batch's new posts are filed at once, but an id that a post before it took still makes
    a duplicate: earlier in the same batch, in an earlier batch since the last checkpoint (held
    in memory), or before a checkpoint (saved). Batches are 64 files; checkpoints every 70."""
    monkeypatch.setattr(retrieval.archive, "CHECKPOINT_FILES", 70)
    for name, urlname in (("p0003.md", "p1"), ("p0100.md", "p1"), ("p0130.md", "p71"), ("p0200.md", "p2")):
        text = (many / name).read_text("utf-8")
        (many / name).write_text(re.sub(r"urlname: \S+", f"urlname: {urlname}", text), "utf-8")
    archive = Archive.open(many, tmp_path / "index", workers=2, settle_seconds=0)
    assert {rel: entry.reason for rel, entry in archive.files.noted() if entry.reason} == {
        "p0003.md": "duplicate id 'p1' (already used by p0001.md)",  # the same batch
        "p0100.md": "duplicate id 'p1' (already used by p0001.md)",  # saved by the checkpoint at 70
        "p0130.md": "duplicate id 'p71' (already used by p0071.md)",  # batch 1, filed after that checkpoint
        "p0200.md": "duplicate id 'p2' (already used by p0002.md)",  # saved by the one at 140
    }
    assert len(archive) == POOL_THRESHOLD + 60 - 4
    assert [archive.get(post_id).path for post_id in ("p1", "p71", "p2")] == ["p0001.md", "p0071.md", "p0002.md"]
