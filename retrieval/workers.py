"""Reading and tokenizing many files in worker processes that never import the caller.

``multiprocessing``'s spawn and forkserver start methods re-import the caller's ``__main__``
in every worker, so a plain script that opens a large archive without an
``if __name__ == "__main__":`` guard would start workers that start workers, and fail. These
workers are ordinary child processes (``python -P -m retrieval.workers``: without ``-P``,
``-m`` would put the current directory first on their path, and a ``retrieval`` there would
be imported instead of this one) that import only this package; the parent sends them
batches of files and gets back their analyses, in order, over pipes (length-prefixed
pickles, never touching anything but the two processes' own pipes).
What the workers need beyond the files can change while they run (a build's store trains its
dictionary on its first posts): :meth:`WorkerPool.update` hands each worker the change before
its next batch.
"""

from __future__ import annotations

import os
import pickle
import queue
import struct
import subprocess
import sys
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator

_HEADER = struct.Struct("<Q")
#: Batches sent ahead per worker. While the caller keeps up, results do not wait long; while
#: it is busy elsewhere (a build's checkpoint, about 10 s on one core at a million posts), the
#: workers go on with these on the other core and their results wait in memory: about 0.4 MB
#: a batch of 64 news posts, so 200 MB for two workers at most. With 64 batches (a second or
#: two of work) the cores were 14-25% idle over the 20,000 posts around each checkpoint of a
#: million-post build, with 256 10-11%, and the build's peak private memory was 1,410 MB
#: instead of 1,339 (253.5 s against 312.3 s, one run each on a host that moves a build by a
#: quarter within the hour).
AHEAD = 256
#: How long a failed worker is given to end before its exit status is reported as unknown.
EXIT_WAIT_SECONDS = 1.0
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


def _exit_status(proc: subprocess.Popen) -> int | None:
    """A worker's exit status, once it has closed its end (None if it is still running after
    a moment: it answered nonsense)."""
    try:
        return proc.wait(timeout=EXIT_WAIT_SECONDS)
    except subprocess.TimeoutExpired:
        return None


class WorkerPool:
    """``size`` worker processes, each set up with ``setup`` (sent once: see :func:`main`)."""

    def __init__(self, size: int, setup: Any) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
        self._idle: queue.SimpleQueue[subprocess.Popen] = queue.SimpleQueue()
        self._procs: list[subprocess.Popen] = []
        self._failure: str | None = None  # why the pool stopped (a worker died or answered nonsense)
        self._update: tuple[int, Any] = (0, None)  # (how many updates so far, the last one)
        self._updated: dict[int, int] = {}  # per worker (by pid), how many of them it has had
        try:
            for _ in range(size):
                proc = subprocess.Popen([sys.executable, "-P", "-m", "retrieval.workers"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, env=env)
                self._procs.append(proc)
                send(proc.stdin, setup)  # type: ignore[arg-type]
                self._idle.put(proc)
        except OSError as exc:  # (no process to be had: out of memory or of processes)
            self.close()
            raise WorkerError(f"cannot start an indexing worker: {exc}") from None
        except BaseException:
            self.close()
            raise

    def _run(self, batch: list) -> Any:
        proc = self._idle.get()
        try:
            if self._failure is not None:  # another worker failed: the map is over
                raise WorkerError(self._failure)
            try:
                count, change = self._update
                if self._updated.get(proc.pid, 0) != count:
                    send(proc.stdin, (_UPDATE, change))  # type: ignore[arg-type]
                    self._updated[proc.pid] = count
                send(proc.stdin, batch)  # type: ignore[arg-type]
                result = receive(proc.stdout)  # type: ignore[arg-type]
            except (EOFError, OSError, pickle.UnpicklingError) as exc:
                self._failure = f"an indexing worker failed (exit status {_exit_status(proc)}): {exc!r}"
                raise WorkerError(self._failure) from None
        finally:
            # Back even when dead: a batch waiting for a worker must get one, to fail, not hang.
            self._idle.put(proc)
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
        with ThreadPoolExecutor(len(self._procs)) as threads:
            pending: deque[Future] = deque()
            try:
                for batch in batches:
                    pending.append(threads.submit(self._run, batch))
                    if len(pending) >= AHEAD * len(self._procs):
                        yield pending.popleft().result()
                while pending:
                    yield pending.popleft().result()
            finally:  # (a failure, or the caller stopped early: the batches not begun are dropped)
                for future in pending:
                    future.cancel()

    def close(self) -> None:
        for proc in self._procs:
            try:
                if proc.stdin:
                    proc.stdin.close()  # end of input: the worker exits
                proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
            if proc.stdout:
                proc.stdout.close()
        self._procs.clear()

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main() -> None:
    """A worker: read the setup, then answer batches of (path, rel) with their analyses, and
    take the updates that come between them (unanswered)."""
    from .analyze import analyze_batch, worker_setup

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing printed by a library may corrupt the replies
    state = worker_setup(receive(stdin))
    while True:
        try:
            message = receive(stdin)
        except EOFError:
            return
        if isinstance(message, tuple) and message[:1] == (_UPDATE,):
            state.update(message[1])
            continue
        send(stdout, analyze_batch(state, message))


if __name__ == "__main__":
    main()
