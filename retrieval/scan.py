"""Finding the post files of a content directory, fast enough to run every few seconds.

A full scan lists every directory and stats every post file. On a large archive most of that
is wasted: a directory whose modification time has not changed has gained, lost or renamed
no entry. A quick scan therefore stats every directory but re-lists (and stats the files of)
only those whose time changed, reusing what the previous scan found elsewhere. What a quick
scan cannot see is a file edited in place in an unchanged directory; a full scan, done at
least every ``full_every`` seconds, catches those. A directory modified within ``RACY_NS`` of
the scan that read it, or holding a file modified that recently (perhaps still being written),
is re-listed next time too: its time may not move on a second change (file-system timestamps
are coarse), the same precaution git takes.

What counts as a post file is Hexo's rule for ``source/_posts``: a ``.md``, ``.markdown`` or
``.txt`` regular file, no part of whose path starts with ``_`` or ``.`` and whose name does not
end with ``%`` or ``~`` (editors' temporary files). Links to directories are followed, but a
directory is listed once per scan however many links lead to it (its real path is tracked), so
a link loop such as ``ln -s . loop`` adds nothing. A name that is not valid UTF-8 cannot be
shown, stored or linked to: it is reported (escaped) with :data:`BAD_NAME` and not read.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from array import array
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import NamedTuple

from .native import beside, native

log = logging.getLogger(__name__)

POST_SUFFIXES = (".md", ".markdown", ".txt")
HIDDEN_PREFIXES = ("_", ".")
TEMPORARY_SUFFIXES = ("%", "~")
RACY_NS = 2_000_000_000
FULL_SCAN_SECONDS = 600.0
BAD_NAME = "file name is not valid UTF-8 (rename it to index it)"
#: The rules above as the C extension's ``list_posts`` and ``stat_tree`` take them (each
#: hidden prefix and temporary suffix is one ASCII character, each post suffix lower case).
_SKIP = "".join(prefix[0] for prefix in HIDDEN_PREFIXES).encode()
_SUFFIXES = tuple(suffix.encode("ascii") for suffix in POST_SUFFIXES)
_TEMPORARY = "".join(TEMPORARY_SUFFIXES).encode("ascii")


class FileStat(NamedTuple):
    """A post file found on disk: its size and modification time, and why its name cannot be
    used (None for a good name). Its path is :meth:`ContentScanner.path` of its name (not
    kept here: a million of them would hold a hundred megabytes of paths)."""

    size: int
    mtime_ns: int
    bad_name: str | None = None


def shown_name(name: str) -> str | None:
    """``name`` when it is valid UTF-8; None for a name with undecodable bytes (which Python
    holds as lone surrogates, which no JSON, SQLite or Telegram text can carry)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return name


def escaped(name: str) -> str:
    """A printable stand-in for a name that is not valid UTF-8 (``\\xff`` for the bad bytes)."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def is_post_name(name: str) -> bool:
    """A file Hexo would render from ``_posts`` (and not an editor's temporary file)."""
    return name.lower().endswith(POST_SUFFIXES) and not name.endswith(TEMPORARY_SUFFIXES)


@dataclass(slots=True)
class ScanChanges:
    """What a scan found. ``complete``: a full scan, and ``files`` is every post file; else
    ``files`` are those of the directories listed again and ``gone`` those no longer there."""

    complete: bool
    files: dict[str, FileStat] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)


class _Files:
    """A directory's post files as the scanner remembers them between scans: the names in a
    list, sizes and times in arrays, the reasons for bad names in a dict. (A dict of
    :class:`FileStat` took about 250 bytes a file, a quarter of a gigabyte for a million files
    held for the life of the bot; this takes about 90.)"""

    __slots__ = ("_names", "_sizes", "_mtimes", "_bad")

    def __init__(self) -> None:
        self._names: list[str] = []
        self._sizes, self._mtimes = array("q"), array("q")
        self._bad: dict[int, str] = {}

    @classmethod
    def of(cls, names: list[str], sizes: bytes, mtimes: bytes, bad: dict[int, str]) -> _Files:
        """A directory's files at once: names, sizes and times (int64 bytes), bad names' reasons."""
        files = cls()
        files._names, files._bad = names, bad
        files._sizes.frombytes(sizes)
        files._mtimes.frombytes(mtimes)
        return files

    def add(self, name: str, st: FileStat) -> None:
        if st.bad_name:
            self._bad[len(self._names)] = st.bad_name
        self._names.append(name)
        self._sizes.append(st.size)
        self._mtimes.append(st.mtime_ns)

    def _stat(self, i: int) -> FileStat:
        return FileStat(self._sizes[i], self._mtimes[i], self._bad.get(i))

    def get(self, name: str) -> FileStat | None:
        try:
            return self._stat(self._names.index(name))  # (a directory's names: a short search, asked rarely)
        except ValueError:
            return None

    def update(self, name: str, size: int, mtime_ns: int) -> FileStat:
        """The file ``name`` (present) has this size and time now."""
        i = self._names.index(name)
        self._sizes[i], self._mtimes[i] = size, mtime_ns
        return self._stat(i)

    def items(self, prefix: str = "") -> Iterator[tuple[str, FileStat]]:
        """(``prefix`` + name, stat) of each file. Made by ``map`` and ``zip`` rather than a
        generator: a full scan makes a million of these (1.0 s instead of 3.0)."""
        reasons = map(self._bad.get, range(len(self._names)))
        stats = map(tuple.__new__, repeat(FileStat), zip(self._sizes, self._mtimes, reasons))
        return zip(map(prefix.__add__, self._names) if prefix else self._names, stats)

    def names(self) -> set[str]:
        return set(self._names)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)


@dataclass(slots=True)
class _Dir:
    mtime_ns: int
    #: (name, is a link) of each subdirectory to descend into.
    subdirs: list[tuple[str, bool]] = field(default_factory=list)
    files: _Files = field(default_factory=_Files)
    racy: bool = False


class ContentScanner:
    """Scans one content directory, remembering directories between scans."""

    def __init__(self, root: Path, full_every: float = FULL_SCAN_SECONDS) -> None:
        self.root = root
        #: What a name is appended to for its path: ``os.path.join`` took 0.9 µs a file of a
        #: build's main process (a million of them), the concatenation 0.1.
        self._prefix = os.path.join(os.fspath(root), "")
        self.full_every = full_every
        self._dirs: dict[str, _Dir] = {}
        self._last_full = float("-inf")

    def scan(self, full: bool = False) -> dict[str, FileStat]:
        """Every post file (hidden entries skipped) by its relative ``/``-separated name.
        Quick unless ``full`` or the last full scan is older than ``full_every`` seconds."""
        self.changes(full)
        return {name: st for rel, state in self._dirs.items() for name, st in state.files.items(rel)}

    def changes(self, full: bool = False) -> ScanChanges:
        """What changed since the last scan (everything, for a full one): the files of every
        directory listed again, and the files that are gone. A quick scan costs a stat per
        directory and a listing per changed one, however many files the others hold."""
        complete = full or time.monotonic() - self._last_full >= self.full_every
        if complete:
            self._dirs.clear()
            self._last_full = time.monotonic()
            with self._statting_ahead():
                return self._changes(complete)
        return self._changes(complete)

    def _statting_ahead(self) -> AbstractContextManager[None]:
        """While a full scan lists the tree, a thread stats all of it ahead (the C extension's
        ``stat_tree``, which holds no GIL; hidden names are skipped by their first character).
        On a cold cache most of a full scan is the kernel reading inodes: at a million files
        the walk takes that to the other core, and a cold full scan took 9.5 / 10.7 s instead
        of 15.4 / 16.6 (warm, 6.3 / 6.4 s against 7.2 / 6.1, the walk adding about a second of
        CPU)."""
        return beside("stat_tree", os.fsencode(os.path.realpath(self.root)), _SKIP)

    def _changes(self, complete: bool) -> ScanChanges:
        before = dict(self._dirs)
        relisted: list[str] = []
        seen: set[str] = set()
        real_seen: set[str] = set()
        stack = [("", os.path.realpath(self.root))]
        while stack:
            rel, real = stack.pop()
            if real in real_seen:
                log.debug("not following %s again: it leads to a directory already scanned", rel)
                continue
            real_seen.add(real)
            state = self._visit(rel)
            if state is None:
                continue
            seen.add(rel)
            if before.get(rel) is not state:
                relisted.append(rel)
            for sub, is_link in state.subdirs:
                path = os.path.join(self.root, rel, sub)
                stack.append((rel + sub + "/", os.path.realpath(path) if is_link else os.path.join(real, sub)))
        result = ScanChanges(complete)
        for rel in relisted:
            old = before.get(rel)
            new = self._dirs[rel].files
            result.files.update(new.items(rel))
            if old is not None:
                result.gone.update(rel + name for name in old.files.names() - new.names())
        for gone in self._dirs.keys() - seen:
            result.gone.update(gone + name for name in self._dirs.pop(gone).files)
        return result

    def path(self, rel: str) -> str:
        """The path of the file found as ``rel`` (a good name: a bad one is never read)."""
        return self._prefix + rel

    def stat(self, rel: str, fresh: bool = False) -> FileStat | None:
        """What the last scan found of the file ``rel`` (None: not there); with ``fresh``,
        its size and time now (a file can change without its directory changing)."""
        folder, _, name = rel.rpartition("/")
        state = self._dirs.get(folder + "/" if folder else "")
        found = state.files.get(name) if state is not None else None
        if found is None or not fresh or found.bad_name:
            return found
        try:
            st = os.stat(self.path(rel))
        except OSError:
            return found  # gone since: the next listing of its directory says so
        return state.files.update(name, st.st_size, st.st_mtime_ns)  # type: ignore[union-attr]

    def _visit(self, rel: str) -> _Dir | None:
        path = os.path.join(self.root, rel) if rel else str(self.root)
        try:
            mtime = os.stat(path).st_mtime_ns
        except OSError:
            return None
        known = self._dirs.get(rel)
        if known is not None and known.mtime_ns == mtime and not known.racy:
            return known
        state = self._list(path, mtime)
        if state is not None:
            self._dirs[rel] = state
        return state

    @staticmethod
    def _list(path: str, mtime: int) -> _Dir | None:
        """A directory's post files and subdirectories (None: it cannot be listed): the C
        extension's ``list_posts`` when built, which reads and stats a directory without the
        GIL (a full scan of a million files, warm: its listings 2.0 s instead of 9.0 under the
        profiler, the whole scan 3.7–4.1 s instead of 7.2–10.0); :meth:`_list_python`, its
        reference, otherwise."""
        if native is None:
            return ContentScanner._list_python(path, mtime)
        try:
            names, sizes, mtimes, bad, bad_dirs, subdirs, newest = native.list_posts(
                os.fsencode(path), _SKIP, _SUFFIXES, _TEMPORARY, is_post_name)
        except OSError as exc:
            log.warning("cannot list %s: %s", path, exc.strerror or exc)
            return None
        reasons = {}
        for i in bad:
            names[i], reasons[i] = escaped(names[i]), BAD_NAME
        for i in bad_dirs:
            names[i], reasons[i] = escaped(names[i]) + "/", BAD_NAME
        state = _Dir(mtime, sorted(subdirs), _Files.of(names, sizes, mtimes, reasons))
        state.racy = time.time_ns() - max(mtime, newest if newest is not None else mtime) < RACY_NS
        return state

    @staticmethod
    def _list_python(path: str, mtime: int) -> _Dir | None:
        try:
            entries = list(os.scandir(path))
        except OSError as exc:
            log.warning("cannot list %s: %s", path, exc.strerror or exc)
            return None
        state = _Dir(mtime)
        newest = mtime
        for entry in entries:
            name = entry.name
            if name.startswith(HIDDEN_PREFIXES):
                continue
            try:
                if entry.is_dir():
                    if shown_name(name) is None:  # reported, not entered: its files' names are unusable too
                        st = entry.stat()
                        state.files.add(escaped(name) + "/", FileStat(0, st.st_mtime_ns, BAD_NAME))
                    else:
                        state.subdirs.append((name, entry.is_symlink()))
                elif is_post_name(name):
                    st = entry.stat()
                    if stat.S_ISREG(st.st_mode):
                        good = shown_name(name)
                        state.files.add(good or escaped(name), FileStat(
                            st.st_size, st.st_mtime_ns, None if good else BAD_NAME))
                        newest = max(newest, st.st_mtime_ns)
            except OSError:
                continue  # vanished while we looked
        state.subdirs.sort()
        # Recently changed (the directory, or a file still being written): look again next time.
        state.racy = time.time_ns() - newest < RACY_NS
        return state
