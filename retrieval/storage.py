"""The index directory on disk: checksummed files named by generation, and one manifest.

A save writes new files under new names, then replaces ``manifest.json`` atomically
(write, fsync, rename). A process killed mid-save leaves the previous manifest and its files
intact. Every file's size and CRC-32 are in the manifest and checked on load; any mismatch
(or a value of the wrong type) raises :class:`CorruptIndex`. The one exception is a blob saved
as *framed* (the stored posts): each of its pieces carries its own checksum, checked whenever
it is read, so only its size is checked on load. Summing it took two thirds of an open's time
at a million posts (a gigabyte; seconds from a cold disk, and it filled a small machine's page
cache with posts no query had asked for). Blobs are append-only: the manifest records how
much of each is valid, so bytes written past that by an interrupted save are ignored and cut.

One writer, many readers. A process writes only while it holds :class:`WriterLock` (an
advisory ``flock`` on ``writer.lock``, released by the kernel when the process dies, however it
dies), and it takes the lock *before* it reads the manifest, so it never writes on top of a
manifest older than the newest. Readers take no lock and memory-map what a manifest names.
Nothing a reader may have mapped is ever shrunk or rewritten: blobs only grow past the
newest committed size, other files are written once under a new name, and a file is deleted
(unlinked, which leaves existing mappings valid) only once two newer manifests have replaced
the one that named it.
"""

from __future__ import annotations

import fcntl
import json
import logging
import mmap
import os
import sys
import zlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
LOCK = "writer.lock"
_CHUNK = 1 << 24
#: Files checked at once by :meth:`IndexDir.check_all`: one per core (zlib releases the GIL
#: as it sums; at a million posts, two threads on two cores open in 0.27 s instead of 0.40 s
#: warm, four in 0.31 s).
CHECK_THREADS = os.cpu_count() or 1


class CorruptIndex(Exception):
    """The index on disk is missing, damaged or from another format; rebuild it."""


class WriterLock:
    """The right to write one index directory: an exclusive ``flock`` on its ``writer.lock``,
    which also names the holder (pid and command) for the messages of those who wait."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / LOCK
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, wait: bool) -> bool:
        """Take the lock (blocking when ``wait``); False when another process holds it."""
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}: {' '.join(sys.argv)}"[:300].encode("utf-8", "replace"))
        self._fd = fd
        return True

    def holder(self) -> str:
        """Who holds the lock, as it wrote itself down ("pid N: command"), or ""."""
        try:
            return self.path.read_text("utf-8", errors="replace").strip()
        except OSError:
            return ""

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __del__(self) -> None:
        self.release()


def _crc(data: bytes | memoryview | mmap.mmap, length: int | None = None) -> int:
    view = memoryview(data)[: length if length is not None else len(data)]
    crc = 0
    for start in range(0, len(view), _CHUNK):
        crc = zlib.crc32(view[start : start + _CHUNK], crc)
    return crc


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class IndexDir:
    """Reads and writes one index directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.manifest: dict[str, Any] = {}
        self.lock = WriterLock(path)
        #: Files mapped and checked by :meth:`check_all`, until they are read. Nothing else is
        #: kept: an array or view over a file keeps its mapping alive while the index uses it,
        #: and nothing here may hold it longer (a deleted file's disk space stays taken until
        #: its last mapping goes).
        self._checked: dict[str, tuple[mmap.mmap | bytes, int]] = {}

    # ---- reading ----------------------------------------------------------------------------
    def read_manifest(self) -> dict[str, Any]:
        """The manifest, or :class:`CorruptIndex` when it is missing or not valid."""
        try:
            manifest = json.loads((self.path / MANIFEST).read_text("utf-8"))
        except FileNotFoundError:
            raise CorruptIndex("no index yet") from None
        except (OSError, ValueError) as exc:
            raise CorruptIndex(f"unreadable manifest: {exc}") from None
        if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
            raise CorruptIndex("manifest has no file table")
        self.manifest = manifest
        self._checked = {}
        return manifest

    def check_all(self) -> None:
        """Map and check every file the manifest names, several at once, largest first.

        The checksums are most of an open's time (700 MB at a million posts, the framed store
        aside): zlib sums with the GIL released, so threads use every core and keep several
        reads in flight on a cold disk. The first damaged file raises :class:`CorruptIndex`, as
        :meth:`array` and the others would."""
        files = self.manifest["files"]
        keys = sorted(files, key=lambda k: -self._entry(k)["size"])
        with ThreadPoolExecutor(min(CHECK_THREADS, max(1, len(keys)))) as pool:
            self._checked = dict(zip(keys, pool.map(self._map_checked, keys)))

    def _entry(self, key: str) -> dict[str, Any]:
        entry = self.manifest["files"].get(key)
        if not isinstance(entry, dict) or not {"name", "size", "crc"} <= entry.keys():
            raise CorruptIndex(f"manifest lacks {key}")
        name, size, crc = entry["name"], entry["size"], entry["crc"]
        if not (isinstance(name, str) and name == Path(name).name and name not in (LOCK, MANIFEST)
                and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (size, crc))):
            raise CorruptIndex(f"manifest entry of {key} is malformed")
        return entry

    def _map(self, key: str) -> tuple[mmap.mmap | bytes, int]:
        """The file's bytes and valid size, checked (by :meth:`check_all`, or now)."""
        checked = self._checked.pop(key, None)
        return checked if checked is not None else self._map_checked(key)

    def _map_checked(self, key: str) -> tuple[mmap.mmap | bytes, int]:
        entry = self._entry(key)
        path = self.path / str(entry["name"])
        try:
            with path.open("rb") as fh:
                actual = os.fstat(fh.fileno()).st_size
                if actual < entry["size"]:
                    raise CorruptIndex(f"{path.name} is {actual} bytes, expected {entry['size']}")
                data: mmap.mmap | bytes = (
                    mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if actual else b""
                )
        except OSError as exc:
            raise CorruptIndex(f"cannot read {path.name}: {exc.strerror or exc}") from None
        if entry.get("framed") is not True and _crc(data, entry["size"]) != entry["crc"]:
            raise CorruptIndex(f"{path.name} fails its checksum")
        return data, int(entry["size"])

    def array(self, key: str, kinds: str = "iu") -> np.ndarray:
        """A checked one-dimensional ``.npy`` file whose dtype kind is one of ``kinds``
        ('i', 'u': integers, 'b': booleans), memory-mapped read-only."""
        data, size = self._map(key)
        if size != len(data):
            raise CorruptIndex(f"{key} has trailing bytes")
        try:
            arr = np.load(self.path / self._entry(key)["name"], mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise CorruptIndex(f"{key}: {exc}") from None
        if not isinstance(arr, np.ndarray) or arr.ndim != 1 or arr.dtype.kind not in kinds:
            raise CorruptIndex(f"{key} is not a one-dimensional array of kind {kinds!r}")
        # A plain array over the same mapping: np.memmap's own indexing costs a microsecond a
        # call, and a query indexes these arrays thousands of times.
        return arr.view(np.ndarray)

    def json(self, key: str) -> Any:
        """A checked JSON file."""
        data, size = self._map(key)
        try:
            return json.loads(bytes(memoryview(data)[:size]))
        except ValueError as exc:
            raise CorruptIndex(f"{key}: {exc}") from None

    def blob(self, key: str, *, scattered: bool = False) -> memoryview:
        """The valid prefix of an append-only blob. ``scattered``: it is read a small piece
        here and there (a post's frame), so the kernel is told not to read ahead. Each miss
        used to read 128 KB around a 1 KB frame: at a million posts, whose gigabyte of frames
        a 2 GB machine cannot keep cached, a query's summaries and re-rank read tens of
        megabytes and pushed the postings out (p50 41 ms, 8.5 ms without the read-ahead)."""
        data, size = self._map(key)
        if scattered and isinstance(data, mmap.mmap):
            data.madvise(mmap.MADV_RANDOM)
        return memoryview(data)[:size]

    def grown_array(self, key: str, dtype: type) -> np.ndarray:
        """The valid prefix of an append-only array (raw little-endian values of ``dtype``: see
        :meth:`Save.grow_array`), memory-mapped."""
        data = self.blob(key)
        itemsize = np.dtype(dtype).itemsize
        if len(data) % itemsize:
            raise CorruptIndex(f"{key} is not a whole number of {np.dtype(dtype).name} values")
        return np.frombuffer(data, np.dtype(dtype).newbyteorder("<"))

    # ---- writing ----------------------------------------------------------------------------
    def begin(self) -> "Save":
        """Start a save on top of the current manifest (only the lock's holder may)."""
        if not self.lock.held:
            raise RuntimeError("saving the index without holding its writer lock")
        return Save(self)


class Save:
    """One atomic save: put files, then :meth:`commit`.

    The files are written, synced and summed in a thread of the save's own, in the order they
    were put, while the caller goes on making the next (a build's checkpoint makes the file
    table, the labels and the string tables in Python while the main segment's hundreds of
    megabytes go to the disk; the writes, the syncs and the sums hold no GIL). What is put
    must not change until :meth:`commit`, which waits for every write and raises the first
    error one met."""

    def __init__(self, index_dir: IndexDir) -> None:
        self.dir = index_dir
        self.generation = int(index_dir.manifest.get("generation", 0)) + 1
        self.files: dict[str, dict[str, Any]] = dict(index_dir.manifest.get("files", {}))
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="index-save")
        self._writes: list[Future] = []

    def __enter__(self) -> "Save":
        return self

    def __exit__(self, *exc: object) -> None:
        """A save given up (an error before its commit): the writes not begun are dropped and
        the one under way is waited for (the files it leaves, no manifest names: the next
        commit deletes them)."""
        self._writer.shutdown(wait=True, cancel_futures=True)

    def _later(self, write: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        self._writes.append(self._writer.submit(write, *args, **kwargs))

    def _written(self) -> None:
        """Wait for every write put so far; the first error, if any, raised."""
        try:
            for write in self._writes:
                write.result()
        finally:
            self._writes.clear()
            self._writer.shutdown(wait=True, cancel_futures=True)

    def _write(self, key: str, name: str, writer) -> None:
        path = self.dir.path / name
        with path.open("wb") as fh:
            writer(fh)
            fh.flush()
            os.fsync(fh.fileno())
        size, crc = 0, 0
        with path.open("rb") as fh:  # what is on disk, a chunk at a time (some files are 100s of MB)
            while chunk := fh.read(_CHUNK):
                size, crc = size + len(chunk), zlib.crc32(chunk, crc)
        self.files[key] = {"name": name, "size": size, "crc": crc}

    def array(self, key: str, arr: np.ndarray) -> None:
        """Write an array as ``.npy``."""
        self._later(self._write, key, f"{key}.g{self.generation}.npy", lambda fh: np.save(fh, np.ascontiguousarray(arr)))

    def json(self, key: str, obj: Any) -> None:
        """Write a JSON document (made now: ``obj`` may change after)."""
        payload = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
        self._later(self._write, key, f"{key}.g{self.generation}.json", lambda fh: fh.write(payload))

    def append_blob(self, key: str, data: bytes | memoryview, *, fresh: bool = False, framed: bool = False) -> None:
        """Append to an append-only blob (a new file when ``fresh``). ``framed``: the blob is
        made of pieces that each carry their own checksum, checked as they are read, so a load
        checks its size but does not sum it (its CRC is still kept)."""
        self._later(self._append, key, data, fresh=fresh, framed=framed)

    def _append(self, key: str, data: bytes | memoryview, *, fresh: bool, framed: bool) -> None:
        entry = self.files.get(key)
        if fresh or entry is None:
            name, size, crc = f"{key}.g{self.generation}.bin", 0, 0
        else:
            name, size, crc = entry["name"], int(entry["size"]), int(entry["crc"])
        path = self.dir.path / name
        with path.open("r+b" if path.exists() else "wb") as fh:
            fh.truncate(size)  # drop whatever an interrupted save left past the valid end
            fh.seek(size)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        self.files[key] = {"name": name, "size": size + len(data), "crc": zlib.crc32(data, crc),
                           **({"framed": True} if framed else {})}

    def grow_array(self, key: str, arr: np.ndarray, *, fresh: bool = False) -> None:
        """Save an array whose saved values never change (a value per document, appended as
        documents come): only the values past those already on disk are appended (the whole
        array, to a new file, when ``fresh``). At a million posts an incremental save writes a
        few bytes instead of 20 MB."""
        self._later(self._grow, key, arr, fresh)

    def _grow(self, key: str, arr: np.ndarray, fresh: bool) -> None:
        data = np.ascontiguousarray(arr, arr.dtype.newbyteorder("<"))
        entry = self.files.get(key)
        saved = 0 if fresh or entry is None or not entry["name"].endswith(".bin") else int(entry["size"])
        if saved % data.dtype.itemsize or saved > data.nbytes:  # not the array saved before: start again
            saved = 0
        self._append(key, memoryview(data).cast("B")[saved:], fresh=saved == 0, framed=False)

    def commit(self, **fields: Any) -> None:
        """Replace the manifest atomically, then delete the files that neither it nor the
        manifest it replaced names (a reader that has just read that one can still map them)."""
        self._written()
        previous = self.dir.manifest.get("files", {})
        manifest = {**fields, "generation": self.generation, "files": self.files}
        tmp = self.dir.path / (MANIFEST + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            json.dump(manifest, fh, ensure_ascii=False, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.dir.path / MANIFEST)
        _fsync_dir(self.dir.path)
        self.dir.manifest = manifest
        named = (*self.files.values(), *(previous.values() if isinstance(previous, dict) else ()))
        keep = {e.get("name") for e in named if isinstance(e, dict)} | {MANIFEST, LOCK}
        for path in self.dir.path.iterdir():
            if path.name not in keep:
                try:
                    path.unlink()
                except OSError as exc:
                    log.warning("could not delete stale index file %s: %s", path.name, exc)
