"""What the index knows of each file, in columns, so that a million files open at once.

Every indexed file has a size, a modification time, a content digest and usually a document;
a few also have a reason they were skipped, warnings, a post id they could not take (a
duplicate) or a time to be read again. A dict of a million :class:`FileEntry` objects costs
seconds to decode and hundreds of megabytes to hold, so a full save writes the common fields
as arrays (memory-mapped at load, nothing decoded), the names as a hashed string table (see
:mod:`retrieval.strings`), and the rare fields as JSON keyed by row. Entries changed since sit
in a dict over the columns (``None``: the file is gone); each is materialized only when asked
for. Callers replace an entry (``table[rel] = entry``) rather than mutate one they got.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from .strings import Lookup, Strings

#: Bytes of a file's content digest (BLAKE2b), stored raw in the digest column.
DIGEST_BYTES = 16
#: The arrays a full save writes beside the names, by key.
COLUMNS = ("size", "mtime", "doc", "digest")
_NO_DOC = -1


@dataclass(slots=True)
class FileEntry:
    """What the index knows of one file. ``doc`` is its document (None when skipped);
    ``reason`` is why its current content could not be indexed; ``post_id`` is the id its post
    has (or wanted, when skipped as a duplicate); ``recheck_at`` (epoch seconds) is when a
    file skipped for a reason that time removes (a post dated in the future) is read again."""

    size: int
    mtime_ns: int
    digest: str
    doc: int | None = None
    post_id: str | None = None
    reason: str | None = None
    warnings: list[str] = field(default_factory=list)
    recheck_at: float | None = None

    def to_json(self) -> list:
        return [self.size, self.mtime_ns, self.digest, self.doc, self.post_id, self.reason, self.warnings,
                self.recheck_at]

    @classmethod
    def from_json(cls, row: object) -> "FileEntry":
        """Inverse of :meth:`to_json`; ValueError when the row is not one."""
        if not isinstance(row, list) or len(row) != 8:
            raise ValueError("a file entry is malformed")
        entry = cls(*row)
        optional = lambda value, kind: value is None or isinstance(value, kind)  # noqa: E731
        if not (isinstance(entry.size, int) and isinstance(entry.mtime_ns, int) and isinstance(entry.digest, str)
                and optional(entry.doc, int) and optional(entry.post_id, str) and optional(entry.reason, str)
                and isinstance(entry.warnings, list) and optional(entry.recheck_at, (int, float))):
            raise ValueError("a file entry is malformed")
        return entry


def _digest_bytes(digest: str) -> bytes | None:
    """A hex digest as the column stores it, or None when it is not one (kept as a rare field)."""
    try:
        raw = bytes.fromhex(digest)
    except ValueError:
        return None
    return raw if len(raw) == DIGEST_BYTES else None


def _row(key: str, rows: int) -> int:
    if not (isinstance(key, str) and key.isdigit() and int(key) < rows):
        raise ValueError(f"a rare-field row {key!r} is not a row")
    return int(key)


def _checked(fields: object) -> list:
    """Rare fields as saved, or ValueError."""
    optional = lambda value, kind: value is None or isinstance(value, kind)  # noqa: E731
    if not (isinstance(fields, list) and len(fields) == 5 and optional(fields[0], str) and optional(fields[1], str)
            and isinstance(fields[2], list) and all(isinstance(w, str) for w in fields[2])
            and optional(fields[3], (int, float)) and not isinstance(fields[3], bool) and optional(fields[4], str)):
        raise ValueError("a file's rare fields are malformed")
    return fields


class FileTable(Lookup):
    """rel -> :class:`FileEntry`: saved columns plus the entries changed since."""

    def __init__(self, names: Strings | None = None, columns: dict[str, np.ndarray] | None = None,
                 rare: dict[str, list] | None = None, post_id=None) -> None:
        self._names = names if names is not None else Strings()
        cols = columns or {}
        self._size = cols.get("size", np.zeros(0, np.int64))
        self._mtime = cols.get("mtime", np.zeros(0, np.int64))
        self._doc = cols.get("doc", np.zeros(0, np.int32))
        self._digest = cols.get("digest", np.zeros(0, np.uint8))
        self._rows = self._names.base
        if not (len(self._names) == self._rows == self._size.shape[0] == self._mtime.shape[0] == self._doc.shape[0]
                and self._digest.shape[0] == DIGEST_BYTES * self._rows):
            raise ValueError("file columns disagree in length")
        #: Rare fields by row: [post id (when not its document's), reason, warnings, recheck_at,
        #: digest (when not hex)].
        self._rare = {_row(key, self._rows): _checked(fields) for key, fields in (rare or {}).items()}
        #: Post id of a document (for rows with one), from the document store.
        self._post_id = post_id or (lambda doc: None)
        self._changed: dict[str, FileEntry | None] = {}

    # ---- reading ----------------------------------------------------------------------------
    def _row_entry(self, row: int) -> FileEntry:
        doc = int(self._doc[row])
        digest = bytes(self._digest[row * DIGEST_BYTES : (row + 1) * DIGEST_BYTES]).hex()
        entry = FileEntry(int(self._size[row]), int(self._mtime[row]), digest, None if doc == _NO_DOC else doc)
        rare = self._rare.get(row)
        if rare is not None:
            entry.post_id, entry.reason, entry.warnings, entry.recheck_at = rare[0], rare[1], list(rare[2]), rare[3]
            if rare[4] is not None:
                entry.digest = rare[4]
        if entry.doc is not None and entry.post_id is None:
            entry.post_id = self._post_id(entry.doc)
        return entry

    def get(self, rel: str) -> FileEntry | None:
        if rel in self._changed:
            return self._changed[rel]
        row = self._names.get(rel)
        return None if row is None else self._row_entry(row)

    def is_empty(self) -> bool:
        """Whether no file has an entry."""
        return self._rows == 0 and all(entry is None for entry in self._changed.values())

    def known(self, rels: list[str]) -> np.ndarray:
        """Per name, whether :meth:`get` finds an entry for it: a batch's at once (the saved
        names' hashes searched together, no entry made)."""
        found = self._names.numbers_of(rels) >= 0 if self._rows else np.zeros(len(rels), np.bool_)
        changed = self._changed
        if changed:
            for i, rel in enumerate(rels):
                if rel in changed:
                    found[i] = changed[rel] is not None
        return found

    def unchanged(self, rel: str, size: int, mtime_ns: int, now: float) -> bool:
        """Whether ``rel`` is known with this size and time, and not due to be read again at
        ``now`` (epoch seconds); checked on the columns, no entry made (a full scan asks this
        of every file)."""
        if rel in self._changed:
            entry = self._changed[rel]
            return (entry is not None and (entry.size, entry.mtime_ns) == (size, mtime_ns)
                    and (entry.recheck_at is None or entry.recheck_at > now))
        row = self._names.get(rel)
        if row is None or int(self._size[row]) != size or int(self._mtime[row]) != mtime_ns:
            return False
        rare = self._rare.get(row)
        return rare is None or rare[3] is None or rare[3] > now

    def keys(self) -> Iterator[str]:
        """Every file's name (saved ones first, in row order)."""
        changed = self._changed
        for row in range(self._rows):
            rel = self._names.string(row)
            if rel not in changed:
                yield rel
        yield from (rel for rel, entry in changed.items() if entry is not None)

    def __iter__(self) -> Iterator[str]:
        return self.keys()

    def items(self) -> Iterator[tuple[str, FileEntry]]:
        for rel in self.keys():
            yield rel, self[rel]

    def noted(self) -> Iterator[tuple[str, FileEntry]]:
        """The files with a reason, warnings or no document (few), without visiting the rest."""
        rows = set(self._rare) | set(np.flatnonzero(self._doc == _NO_DOC).tolist())
        for row in sorted(rows):
            rel = self._names.string(row)
            if rel not in self._changed:
                yield rel, self._row_entry(row)
        for rel, entry in self._changed.items():
            if entry is not None and (entry.reason or entry.warnings or entry.doc is None):
                yield rel, entry

    def path_of(self, doc: int) -> str | None:
        """The file whose document is ``doc``."""
        for rel, entry in self._changed.items():
            if entry is not None and entry.doc == doc:
                return rel
        for row in np.flatnonzero(self._doc == doc).tolist():
            rel = self._names.string(row)
            if rel not in self._changed:
                return rel
        return None

    # ---- changing ---------------------------------------------------------------------------
    def __setitem__(self, rel: str, entry: FileEntry) -> None:
        self._changed[rel] = entry

    def pop(self, rel: str) -> FileEntry:
        entry = self[rel]
        self._changed[rel] = None
        return entry

    def forget(self, rel: str) -> None:
        """Drop ``rel`` if present."""
        if rel in self:
            self._changed[rel] = None

    def renumber(self, renumber: np.ndarray) -> None:
        """Documents compacted: old number -> new (-1: gone, the file keeps no document)."""
        self._doc = np.where(self._doc == _NO_DOC, _NO_DOC, renumber[np.maximum(self._doc, 0)]).astype(np.int32)
        for rel, entry in self._changed.items():
            if entry is not None and entry.doc is not None:
                new = int(renumber[entry.doc])
                self._changed[rel] = FileEntry(entry.size, entry.mtime_ns, entry.digest, new if new >= 0 else None,
                                               entry.post_id, entry.reason, entry.warnings, entry.recheck_at)

    # ---- saving -----------------------------------------------------------------------------
    def saved_form(self) -> tuple[Strings, dict[str, np.ndarray], dict[str, list]]:
        """Everything as (names, columns, rare fields by row), for a full save: the saved rows
        that no change replaced, as they are (selected from the columns, their names' hashes
        reused), then the changed entries. Only those are visited one by one: a checkpoint
        of a million-post build used to rebuild every row's entry and took 10 s of its 19."""
        changed = list(self._changed.items())
        keep = np.ones(self._rows, np.bool_)
        if changed and self._rows:
            replaced = self._names.numbers_of([rel for rel, _ in changed])
            keep[replaced[replaced >= 0]] = False
        new_row = np.cumsum(keep) - 1
        rare = {str(int(new_row[row])): fields for row, fields in sorted(self._rare.items()) if keep[row]}
        entries = [(rel, entry) for rel, entry in changed if entry is not None]
        first = int(keep.sum())
        digests = []
        for i, (_, entry) in enumerate(entries):
            raw = _digest_bytes(entry.digest)
            digests.append(raw or bytes(DIGEST_BYTES))
            own_id = entry.doc is not None and entry.post_id == self._post_id(entry.doc)
            if entry.reason or entry.warnings or entry.recheck_at is not None or raw is None or not own_id:
                rare[str(first + i)] = [None if own_id else entry.post_id, entry.reason, entry.warnings,
                                        entry.recheck_at, None if raw else entry.digest]
        kept = None if bool(keep.all()) else keep  # (every saved row kept, as in a build: nothing to select)
        selected = lambda saved: saved if kept is None else saved[kept]  # noqa: E731
        column = lambda saved, values, kind: np.concatenate([selected(saved), np.asarray(values, kind)])  # noqa: E731
        columns = {
            "size": column(self._size, [e.size for _, e in entries], np.int64),
            "mtime": column(self._mtime, [e.mtime_ns for _, e in entries], np.int64),
            "doc": column(self._doc, [_NO_DOC if e.doc is None else e.doc for _, e in entries], np.int32),
            "digest": np.concatenate([selected(self._digest.reshape(-1, DIGEST_BYTES)).ravel(),
                                      np.frombuffer(b"".join(digests), np.uint8)]),
        }
        return Strings(*self._names.saved_form(kept, [rel for rel, _ in entries])), columns, rare
