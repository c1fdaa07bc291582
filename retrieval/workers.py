"""Reading and tokenizing many files in worker processes that never import the caller.

``multiprocessing``'s spawn and forkserver start methods re-import the caller's ``__main__``
in every worker, so a plain script that opens a large archive without an
``if __name__ == "__main__":`` guard would start workers that start workers, and fail. Here
one ordinary child process, the zygote (``python -P -m retrieval.workers``: without ``-P``,
``-m`` would put the current directory first on its path, and a ``retrieval`` there would be
imported instead of this one), imports only this package, makes the state a worker starts
from and forks the workers from it. The parent's own process is never forked (it may have
threads: a bot's, a save's), and the workers share the zygote's pages, jieba's dictionary
among them (about 68 MB): two workers that loaded their own dictionaries took 288 µs a post
each, side by side, where two forked from one took 257 (three alternating pairs, 8,000 news
posts, files cached), their two copies no longer crowding each other out of the processor's
shared cache. The parent sends each worker batches of files and gets back their analyses,
in order, over pipes of their own (length-prefixed pickles); the zygote tells it the workers'
pids and, as each ends, its exit status.
What the workers need beyond the files can change while they run (a build's store trains its
dictionary on its first posts): :meth:`WorkerPool.update` hands each worker the change before
its next batch.
"""

from __future__ import annotations

import gc
import os
import pickle
import queue
import signal
import struct
import subprocess
import sys
import threading
import traceback
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator, NoReturn

_HEADER = struct.Struct("<Q")
#: Batches sent ahead per worker. While the caller keeps up, results do not wait long; while
#: it is busy elsewhere (a build's checkpoint, about 10 s on one core at a million posts), the
#: workers go on with these on the other core and their results wait in memory: about 0.4 MB
#: a batch of 64 news posts, so 100 MB a worker at most. With 64 batches (a second or
#: two of work) the cores were 14-25% idle over the 20,000 posts around each checkpoint of a
#: million-post build, with 256 10-11%, and the build's peak private memory was 1,410 MB
#: instead of 1,339 (253.5 s against 312.3 s, one run each on a host that moves a build by a
#: quarter within the hour).
AHEAD = 256
#: How long a failed worker is given to end before its exit status is reported as unknown.
EXIT_WAIT_SECONDS = 1.0
#: How long the workers are given to end when the pool closes, before they are killed.
CLOSE_WAIT_SECONDS = 30.0
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)
#: The first item of a message that is an update, not a batch (see :meth:`WorkerPool.update`).
_UPDATE = "update"


def send(stream: BinaryIO, obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)))
    stream.write(data)
    stream.flush()


def receive(stream: BinaryIO) -> Any:
    """The next object; EOFError when the other side has closed the pipe."""
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError
    (size,) = _HEADER.unpack(header)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


class WorkerError(RuntimeError):
    """A worker process could not be started, died or answered nonsense."""


class _Worker:
    """The parent's end of one worker: its number (the zygote's reports name it by that) and
    its two pipes."""

    __slots__ = ("index", "requests", "replies")

    def __init__(self, index: int, requests: BinaryIO, replies: BinaryIO) -> None:
        self.index, self.requests, self.replies = index, requests, replies


class WorkerPool:
    """``size`` worker processes, each set up with ``setup``, forked by a zygote (see the
    module docstring) that reports their pids and, when they end, their exit statuses."""

    def __init__(self, size: int, setup: Any) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        self._workers: list[_Worker] = []
        self._zygote: subprocess.Popen | None = None
        self._failure: str | None = None  # why the pool stopped (a worker died or answered nonsense)
        self._update: tuple[int, Any] = (0, None)  # (how many updates so far, the last one)
        self._updated: dict[int, int] = {}  # per worker, how many of them it has had
        self._news = threading.Condition()  # the zygote's reports: the pids, then the exits
        self._pids: list[int] = []
        self._ended: dict[int, int | str] = {}  # per worker: its exit status (or why it never started)
        self._zygote_gone = False
        self._size = size
        try:
            self._start(size, setup, env)
        except OSError as exc:  # (no process to be had: out of memory or of processes)
            self.close()
            raise WorkerError(f"cannot start an indexing worker: {exc}") from None
        except BaseException:
            self.close()
            raise

    def _start(self, size: int, setup: Any, env: dict[str, str]) -> None:
        theirs: list[int] = []  # per worker: its requests' end to read, its replies' to write
        try:
            for index in range(size):
                requests_r, requests_w = os.pipe()
                requests = open(requests_w, "wb")
                theirs.append(requests_r)
                try:
                    replies_r, replies_w = os.pipe()
                except OSError:
                    requests.close()
                    raise
                theirs.append(replies_w)
                self._workers.append(_Worker(index, requests, open(replies_r, "rb")))
            self._zygote = subprocess.Popen([sys.executable, "-P", "-m", "retrieval.workers"], stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, env=env, pass_fds=theirs)
        finally:
            for fd in theirs:  # (the zygote has its own copies: a worker's ends must be its alone)
                os.close(fd)
        send(self._zygote.stdin, (setup, list(zip(theirs[0::2], theirs[1::2]))))  # type: ignore[arg-type]
        self._zygote.stdin.close()  # type: ignore[union-attr]
        threading.Thread(target=self._listen, name="worker-zygote", daemon=True).start()
        for worker in self._workers:
            self._idle.put(worker)

    def _listen(self) -> None:
        """Take the zygote's reports until it ends (once every worker has). A worker it never
        reported on (the zygote failed before forking it, say, making the state) has the
        zygote's own exit status."""
        zygote = self._zygote
        try:
            while True:
                kind, *details = receive(zygote.stdout)  # type: ignore[arg-type,union-attr]
                with self._news:
                    if kind == "started":
                        self._pids = details[0]
                    else:  # ("ended", index, status or reason)
                        self._ended[details[0]] = details[1]
                    self._news.notify_all()
        except (EOFError, OSError, pickle.UnpicklingError, ValueError):
            try:
                status = zygote.wait(timeout=EXIT_WAIT_SECONDS)  # type: ignore[union-attr]
            except subprocess.TimeoutExpired:
                status = None
            with self._news:
                if status is not None:
                    for index in range(self._size):
                        self._ended.setdefault(index, status)
                self._zygote_gone = True
                self._news.notify_all()

    @property
    def pids(self) -> list[int]:
        """The workers' pids (empty until the zygote has forked them)."""
        with self._news:
            return list(self._pids)

    def _exit_status(self, worker: _Worker) -> int | str | None:
        """A failed worker's exit status (or why it never started), once the zygote reports
        it; None if it has not after a moment (it answered nonsense and is still running)."""
        with self._news:
            self._news.wait_for(lambda: worker.index in self._ended or self._zygote_gone, EXIT_WAIT_SECONDS)
            return self._ended.get(worker.index)

    def _run(self, batch: list) -> Any:
        worker = self._idle.get()
        try:
            if self._failure is not None:  # another worker failed: the map is over
                raise WorkerError(self._failure)
            try:
                count, change = self._update
                if self._updated.get(worker.index, 0) != count:
                    send(worker.requests, (_UPDATE, change))
                    self._updated[worker.index] = count
                send(worker.requests, batch)
                result = receive(worker.replies)
            except (EOFError, OSError, pickle.UnpicklingError) as exc:
                status = self._exit_status(worker)
                how = f"could not start: {status}" if isinstance(status, str) else f"exit status {status}"
                self._failure = f"an indexing worker failed ({how}): {exc!r}"
                raise WorkerError(self._failure) from None
        finally:
            # Back even when dead: a batch waiting for a worker must get one, to fail, not hang.
            self._idle.put(worker)
        return result

    def update(self, change: Any) -> None:
        """Have every worker take ``change`` (its state's ``update``) before its next batch; the
        batches sent already are done without it."""
        self._update = (self._update[0] + 1, change)

    def map(self, batches: Iterable[list]) -> Iterator[Any]:
        """Each batch's results, in the order of the batches, computed concurrently. At most
        :data:`AHEAD` batches per worker are in flight: results the caller has not taken yet
        wait in memory, and a build must not hold a million posts' worth of them. ``batches``
        is read as they are sent."""
        with ThreadPoolExecutor(len(self._workers)) as threads:
            pending: deque[Future] = deque()
            try:
                for batch in batches:
                    pending.append(threads.submit(self._run, batch))
                    if len(pending) >= AHEAD * len(self._workers):
                        yield pending.popleft().result()
                while pending:
                    yield pending.popleft().result()
            finally:  # (a failure, or the caller stopped early: the batches not begun are dropped)
                for future in pending:
                    future.cancel()

    def close(self) -> None:
        """End the workers (their requests end: each exits) and the zygote (once they have);
        whatever is still running after :data:`CLOSE_WAIT_SECONDS` is killed."""
        for worker in self._workers:
            try:
                worker.requests.close()
            except OSError:  # (the worker is gone, and the last request never reached it)
                pass
        if self._zygote is not None:
            try:
                self._zygote.wait(timeout=CLOSE_WAIT_SECONDS)
            except subprocess.TimeoutExpired:
                self._kill_the_rest()
            if self._zygote.stdout:
                self._zygote.stdout.close()
            self._zygote = None
        for worker in self._workers:
            worker.replies.close()
        self._workers.clear()

    def _kill_the_rest(self) -> None:
        """Kill the workers the zygote has not reported ended; the zygote reaps them, reports
        them and ends (else it is killed too)."""
        with self._news:
            running = [pid for index, pid in enumerate(self._pids) if index not in self._ended]
        for pid in running:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:  # (it ended meanwhile)
                pass
        try:
            self._zygote.wait(timeout=EXIT_WAIT_SECONDS)  # type: ignore[union-attr]
        except subprocess.TimeoutExpired:
            self._zygote.kill()  # type: ignore[union-attr]
            self._zygote.wait()  # type: ignore[union-attr]

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main() -> None:
    """The zygote: read the setup and each worker's pipes, make the state every worker starts
    from (loading the segmenter's dictionary), fork the workers, report their pids, then each
    one's exit status as it ends; it ends after the last."""
    from .analyze import worker_setup

    # Ctrl-C in a terminal goes to the whole process group: it is the parent's to act on, and
    # the workers (which inherit this) end when their requests do, not with a traceback each.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing printed by a library may corrupt the reports
    setup, ends = receive(stdin)
    stdin.close()
    state = worker_setup(setup)
    gc.freeze()  # (the objects made so far stay shared: no collection writes to their pages)
    pids: dict[int, int] = {}
    for index, (requests, replies) in enumerate(ends):
        try:
            pid = os.fork()
        except OSError as exc:
            _report(stdout, ("ended", index, str(exc)))
        else:
            if pid == 0:
                _serve(state, requests, replies, [fd for other in ends[index + 1:] for fd in other])
            pids[pid] = index
        os.close(requests)
        os.close(replies)
    _report(stdout, ("started", list(pids)))
    while pids:
        pid, status = os.wait()
        if pid in pids:
            _report(stdout, ("ended", pids.pop(pid), os.waitstatus_to_exitcode(status)))


def _report(stdout: BinaryIO, message: tuple) -> None:
    try:
        send(stdout, message)
    except OSError:  # (the parent has gone: the workers end by themselves, and so does this)
        pass


def _serve(state: Any, requests: int, replies: int, others: list[int]) -> NoReturn:
    """A worker (a child of the zygote): answer batches of (path, rel) with their analyses, and
    take the updates that come between them (unanswered), until the requests end."""
    from .analyze import analyze_batch

    status = 1
    try:
        for fd in others:  # (the pipes of the workers forked after this one are theirs)
            os.close(fd)
        quiet = os.open(os.devnull, os.O_RDONLY)
        os.dup2(quiet, 0)  # the zygote's input and reports are not a worker's
        os.dup2(2, 1)
        os.close(quiet)
        with open(requests, "rb") as stdin, open(replies, "wb") as stdout:
            while True:
                try:
                    message = receive(stdin)
                except EOFError:
                    break
                if isinstance(message, tuple) and message[:1] == (_UPDATE,):
                    state.update(message[1])
                    continue
                send(stdout, analyze_batch(state, message))
        status = 0
    except BrokenPipeError:  # (the parent has gone: nobody waits for the answer)
        status = 0
    except BaseException:  # (its traceback goes to stderr, as a process's would)
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(status)


if __name__ == "__main__":
    main()
