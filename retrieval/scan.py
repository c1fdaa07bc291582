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
"""

from __future__ import annotations

import logging
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

log = logging.getLogger(__name__)

POST_SUFFIXES = (".md", ".markdown", ".txt")
RACY_NS = 2_000_000_000
FULL_SCAN_SECONDS = 600.0


class FileStat(NamedTuple):
    """A post file found on disk: where it is, its size and modification time."""

    path: str
    size: int
    mtime_ns: int


@dataclass(slots=True)
class _Dir:
    mtime_ns: int
    subdirs: list[str] = field(default_factory=list)
    files: dict[str, FileStat] = field(default_factory=dict)
    racy: bool = False


class ContentScanner:
    """Scans one content directory, remembering directories between scans."""

    def __init__(self, root: Path, full_every: float = FULL_SCAN_SECONDS) -> None:
        self.root = root
        self.full_every = full_every
        self._dirs: dict[str, _Dir] = {}
        self._last_full = float("-inf")

    def scan(self, full: bool = False) -> dict[str, FileStat]:
        """Every post file (hidden entries skipped) by its relative ``/``-separated name.
        Quick unless ``full`` or the last full scan is older than ``full_every`` seconds."""
        if full or time.monotonic() - self._last_full >= self.full_every:
            self._dirs.clear()
            self._last_full = time.monotonic()
        found: dict[str, FileStat] = {}
        seen: set[str] = set()
        stack = [""]
        while stack:
            rel = stack.pop()
            state = self._visit(rel)
            if state is None:
                continue
            seen.add(rel)
            for name, st in state.files.items():
                found[rel + name] = st
            stack.extend(rel + sub + "/" for sub in state.subdirs)
        for gone in self._dirs.keys() - seen:
            del self._dirs[gone]
        return found

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
        try:
            entries = list(os.scandir(path))
        except OSError as exc:
            log.warning("cannot list %s: %s", path, exc.strerror or exc)
            return None
        state = _Dir(mtime)
        newest = mtime
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            try:
                if entry.is_dir():
                    state.subdirs.append(name)
                elif name.lower().endswith(POST_SUFFIXES):
                    st = entry.stat()
                    if stat.S_ISREG(st.st_mode):
                        state.files[name] = FileStat(entry.path, st.st_size, st.st_mtime_ns)
                        newest = max(newest, st.st_mtime_ns)
            except OSError:
                continue  # vanished while we looked
        # Recently changed (the directory, or a file still being written): look again next time.
        state.racy = time.time_ns() - newest < RACY_NS
        return state
