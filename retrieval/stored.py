"""Per-document bytes stored compressed, each document alone, with a shared dictionary.

A post's record and its compacted text (which repeat each other) are one zstd frame. Frames
of a kilobyte or two compress poorly alone (1.6x), so they share a dictionary trained on a
sample of the archive's own documents when it is first built: then they compress about as
well as 64 KB blocks of neighbours (3.7x on the news corpus) and one document decodes in a
few microseconds, which matters when a phrase is checked in thousands of posts. Each frame
carries a checksum, checked when it is decoded.

The blob is append-only, like the rest of the index's growing files. The dictionary is
trained once :data:`TRAIN_DOCS` documents have come (they wait raw in memory until then) or
when the store is first saved, and is kept for every document added later; after it, documents
are compressed :data:`COMPRESS_BATCH` at a time (raw until then), or come compressed already:
a build's workers make the frames of their posts with the store's dictionary (see
:class:`Codec`), so that the one process that files every post does not compress them too.
Frames not saved yet wait in a :class:`FrameBuffer`: in memory, and past :data:`SPILL_BYTES`
in a temporary file beside the index.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import tempfile
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import zstandard

#: Frames :meth:`FrameStore.many` asks the disk for at once (a re-rank's pool is 30 to 120).
PREFETCH_FRAMES = 64
#: zstd level. In a build's workers, 10,000 news posts compressed a batch at a time (each batch
#: segmented first, as a worker does), with a dictionary: level 3 (zstd's default) took
#: 20.6-22.4 µs a post for a ratio of 3.57, level 2 16.0-17.0 µs for 3.36, level 1 13.5-14.0
#: for 3.10. The documents are about 57% of a million posts' index, so level 2 makes it 3.5%
#: larger (1.14 to about 1.18 times the text, the goal 1.5) for 5 µs less a post.
LEVEL = 2
#: Documents the dictionary is trained on, and its size; fewer documents than
#: :data:`MIN_TRAIN_DOCS` get no dictionary (zstd cannot train on a handful).
TRAIN_DOCS = 2000
DICT_BYTES = 128 * 1024
MIN_TRAIN_DOCS = 64


#: Documents compressed one after another once there is a dictionary (they wait raw until
#: then, as the first do for the dictionary). For each frame zstd copies the dictionary's
#: tables into its own: 17 µs a frame while they stay in the processor's caches, 96 µs when
#: they do not, as in a build, where each post's other work pushes them out between two.
COMPRESS_BATCH = 64
#: Unsaved frames past this many bytes go to a temporary file (see :class:`FrameBuffer`).
SPILL_BYTES = 16 * 1024 * 1024
#: Frames written to that file are gathered into writes of this many bytes: a frame of a
#: kilobyte a write through the default 8 KB buffer took 1.8-2.1 µs, 0.4-0.5 this way.
SPILL_WRITE_BYTES = 1024 * 1024


class Codec:
    """A store's frame format for one dictionary (empty: none): zstd at :data:`LEVEL`, with a
    checksum, no dictionary id. ``key`` names the dictionary, so that a frame made elsewhere
    (in a worker: see :meth:`FrameStore.append_frame`) is known to be one of this store's."""

    def __init__(self, dictionary: bytes) -> None:
        data = zstandard.ZstdCompressionDict(dictionary) if dictionary else None
        self.key = hashlib.blake2b(dictionary, digest_size=8).digest()
        self.compress = zstandard.ZstdCompressor(level=LEVEL, dict_data=data, write_checksum=True,
                                                 write_dict_id=False).compress
        self.decompress = zstandard.ZstdDecompressor(dict_data=data).decompress


class FrameBuffer:
    """Frames made since the store was loaded, saved or not: in memory, and once they pass
    :data:`SPILL_BYTES`, in an unnamed temporary file in ``spill_dir`` (when there is one).
    Between two checkpoints a build makes 200,000 posts' frames, 200 MB of news: held in the
    process they were a tenth of its peak memory, and at a million posts the peak passed 2 GB.
    A file's pages are the kernel's to write out and drop, and a crash leaves no file behind."""

    def __init__(self, spill_dir: Path | None = None) -> None:
        self.spill_dir = spill_dir
        self._memory = bytearray()
        self._file: BinaryIO | None = None
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def append(self, frame: bytes) -> None:
        if self._file is not None:
            self._file.write(frame)
        else:
            self._memory += frame
            if self.spill_dir is not None and len(self._memory) > SPILL_BYTES:
                self._file = tempfile.TemporaryFile(dir=self.spill_dir, buffering=SPILL_WRITE_BYTES)
                self._file.write(self._memory)
                self._memory = bytearray()
        self._size += len(frame)

    def read(self, lo: int, hi: int) -> bytes:
        """Bytes ``lo:hi``."""
        if self._file is None:
            return bytes(self._memory[lo:hi])
        self._file.flush()
        return os.pread(self._file.fileno(), hi - lo, lo)

    def view(self, lo: int) -> memoryview:
        """Bytes ``lo:`` without a copy (in memory: to be released before the next append)."""
        if self._file is None:
            return memoryview(self._memory)[lo:]
        self._file.flush()
        if lo >= self._size:
            return memoryview(b"")
        return memoryview(mmap.mmap(self._file.fileno(), self._size, access=mmap.ACCESS_READ))[lo:]


class DamagedDocument(ValueError):
    """A stored document fails its checksum or does not decode."""


class Column:
    """A growing integer column: a saved array (memory-mapped, never copied) and the values
    appended since, so that opening a big table costs nothing and appending stays cheap."""

    def __init__(self, saved: np.ndarray | None = None) -> None:
        self._saved = saved if saved is not None else np.zeros(1, np.int64)
        self._count = int(self._saved.shape[0])
        self._new = array("q")  # 8 bytes a value (a list's ints would take 36)

    def __len__(self) -> int:
        return self._count + len(self._new)

    def __getitem__(self, i: int) -> int:
        return int(self._saved[i]) if i < self._count else self._new[i - self._count]

    def last(self) -> int:
        return self._new[-1] if self._new else int(self._saved[-1])

    def append(self, value: int) -> None:
        self._new.append(value)

    def extend(self, values: np.ndarray) -> None:
        self._new.frombytes(np.asarray(values, np.int64).tobytes())

    def array(self) -> np.ndarray:
        return np.concatenate([np.asarray(self._saved, np.int64), np.frombuffer(self._new, np.int64)])

    def ascends(self) -> bool:
        saved = self._saved
        return not (saved.shape[0] > 1 and bool((np.diff(saved) < 0).any()))


class FrameStore:
    """Documents' bytes: frame ``i`` is ``offsets[i]:offsets[i+1]`` of the blob, compressed
    with ``dictionary`` (empty: none). Documents waiting for the dictionary are held raw."""

    def __init__(self, blob: bytes | memoryview = b"", offsets: np.ndarray | None = None,
                 dictionary: bytes | memoryview | None = None, spill_dir: Path | None = None) -> None:
        self._blob = blob
        self._added = FrameBuffer(spill_dir)  # frames made since load: not saved yet (or never, in memory)
        self._saved_len = len(blob)
        self._offsets = Column(offsets)
        self._waiting: list[bytes] = []  # raw documents: before the dictionary, and the last few
        self._dictionary: bytes | None = None if dictionary is None else bytes(dictionary)
        if self._offsets[0] != 0 or self._offsets.last() != len(blob) or not self._offsets.ascends():
            raise ValueError("stored documents disagree with their offsets")
        if self._dictionary is None and len(self._offsets) > 1:
            raise ValueError("stored documents without their dictionary")
        self._codecs()

    def _codecs(self) -> None:
        self._codec = Codec(self._dictionary or b"")

    def __len__(self) -> int:
        return len(self._offsets) - 1 + len(self._waiting)

    def append(self, data: bytes) -> None:
        """Add the next document's bytes (compressed with the next :data:`COMPRESS_BATCH`,
        or the first :data:`TRAIN_DOCS` once they have trained the dictionary)."""
        self._waiting.append(data)
        if len(self._waiting) >= (TRAIN_DOCS if self._dictionary is None else COMPRESS_BATCH):
            self.seal()

    def append_frame(self, frame: bytes, key: bytes) -> None:
        """Add the next document as a frame made already by a :class:`Codec` of this store's
        dictionary whose ``key`` is given (after the documents waiting raw, which are compressed
        first: the frames keep the documents' order)."""
        self.append_frames([frame], key)

    def append_frames(self, frames: list[bytes], key: bytes) -> None:
        """:meth:`append_frame` of each (a worker's batch of posts, filed at once)."""
        if not self._dictionary or key != self._codec.key:
            raise ValueError("a frame made with a dictionary this store does not have")
        self.seal()
        lengths = np.fromiter(map(len, frames), np.int64, len(frames))
        self._added.append(b"".join(frames))
        self._offsets.extend(self._offsets.last() + np.cumsum(lengths))

    def _add_frame(self, frame: bytes) -> None:
        self._added.append(frame)
        self._offsets.append(self._offsets.last() + len(frame))

    def seal(self) -> None:
        """Train the dictionary (when none yet) and compress the waiting documents."""
        if self._dictionary is None:
            if not self._waiting:
                return
            self._dictionary = b""
            if len(self._waiting) >= MIN_TRAIN_DOCS:
                try:
                    self._dictionary = zstandard.train_dictionary(DICT_BYTES, self._waiting).as_bytes()
                except zstandard.ZstdError:  # samples too alike or too small: no dictionary
                    pass
            self._codecs()
        waiting, self._waiting = self._waiting, []
        compress = self._codec.compress
        for data in waiting:
            self._add_frame(compress(data))

    def frame(self, doc: int) -> bytes:
        """Document ``doc``'s compressed frame (sealed documents only)."""
        lo, hi = self._offsets[doc], self._offsets[doc + 1]
        saved = len(self._blob)
        return bytes(self._blob[lo:hi]) if hi <= saved else self._added.read(lo - saved, hi - saved)

    def __getitem__(self, doc: int) -> bytes:
        sealed = len(self._offsets) - 1
        if doc >= sealed:
            return self._waiting[doc - sealed]
        try:
            return self._codec.decompress(self.frame(doc))
        except zstandard.ZstdError as exc:
            raise DamagedDocument(f"stored document {doc} is damaged: {exc}") from None

    def many(self, docs: list[int]) -> Iterator[bytes]:
        """Documents ``docs``, decoded, in order: :meth:`__getitem__` in one tight loop (a
        phrase is checked in tens of thousands of posts: 3.6 µs a post instead of 5.2), each
        :data:`PREFETCH_FRAMES` of them :meth:`prefetch`-ed first (a lone document's fault
        reads it as soon: asking first would only add a system call to a single post's read)."""
        sealed = len(self._offsets) - 1
        saved, blob, decompress = len(self._blob), self._blob, self._codec.decompress
        for first in range(0, len(docs), PREFETCH_FRAMES):
            some = docs[first : first + PREFETCH_FRAMES]
            if len(some) > 1:
                self.prefetch(some)
            for doc in some:
                if doc >= sealed:
                    yield self._waiting[doc - sealed]
                    continue
                lo, hi = self._offsets[doc], self._offsets[doc + 1]
                try:
                    yield decompress(blob[lo:hi] if hi <= saved else self.frame(doc))
                except zstandard.ZstdError as exc:
                    raise DamagedDocument(f"stored document {doc} is damaged: {exc}") from None

    def prefetch(self, docs: list[int]) -> None:
        """Have the disk start reading the saved frames of ``docs``, all at once
        (``MADV_WILLNEED``), when the blob is a mapped file. The store is read without
        read-ahead (see :meth:`~retrieval.storage.IndexDir.blob`), so each frame not cached
        would fault alone and wait for the disk before the next is asked for: a re-rank's
        thirty candidates were thirty waits in a row. A call costs about a microsecond a
        frame when they are cached already."""
        mapped = self._blob.obj if isinstance(self._blob, memoryview) else None
        if not isinstance(mapped, mmap.mmap):
            return
        sealed, saved = len(self._offsets) - 1, len(self._blob)
        for doc in docs:
            if doc < sealed:
                lo, hi = self._offsets[doc], self._offsets[doc + 1]
                if hi <= saved:
                    start = lo - lo % mmap.PAGESIZE
                    mapped.madvise(mmap.MADV_WILLNEED, start, hi - start)

    @property
    def trained(self) -> bool:
        """Whether the documents share a trained dictionary (a store that began with too few
        documents to train one has none, until it is rebuilt: see :meth:`subset`)."""
        return bool(self._dictionary)

    @property
    def trained_dictionary(self) -> bytes:
        """The dictionary once trained (empty before, or when there is none: unlike
        :attr:`dictionary`, asking does not train it)."""
        return self._dictionary or b""

    @property
    def needs_dictionary(self) -> bool:
        """Whether enough documents have come to train a dictionary this store lacks (the
        archive then rewrites the store at its next merge)."""
        return self._dictionary == b"" and len(self) >= TRAIN_DOCS

    def subset(self, docs: list[int]) -> "FrameStore":
        """A new store of ``docs`` (in that order): their frames copied as they are, or, when
        this store has no dictionary, recompressed with one trained on them."""
        self.seal()
        spill_dir = self._added.spill_dir
        if self.trained:
            store = FrameStore(dictionary=self._dictionary, spill_dir=spill_dir)
            for doc in docs:
                store._add_frame(self.frame(doc))
            return store
        store = FrameStore(spill_dir=spill_dir)
        for doc in docs:
            store.append(self[doc])
        store.seal()
        return store

    # ---- persistence ------------------------------------------------------------------------
    @property
    def saved_bytes(self) -> int:
        """How much of the blob is on disk: a save appends to it, or (when 0) starts a new one."""
        return self._saved_len

    def unsaved_bytes(self) -> memoryview:
        """Frames made since the last save (the waiting documents are compressed first): a
        view, not a copy (a build's are most of the index), to be released before the next
        :meth:`append`."""
        self.seal()
        return self._added.view(self._saved_len - len(self._blob))

    def mark_saved(self) -> None:
        self._saved_len = len(self._blob) + len(self._added)

    @property
    def dictionary(self) -> bytes:
        """The dictionary (empty when none), saved once beside the blob."""
        self.seal()
        return self._dictionary or b""

    def offsets(self) -> np.ndarray:
        """The offsets array saved beside the blob (call after :meth:`unsaved_bytes`)."""
        return self._offsets.array()
