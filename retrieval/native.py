"""The C extension ``retrieval._native``, when it was built: None otherwise.

It holds the loops a build spends most of its time in, and the one a query does, each the
twin of a Python function that stays the reference and the fallback:
:func:`~retrieval.tokenizer.normalize`, :func:`~retrieval.tokenizer.fold_chars`,
:func:`~retrieval.phrases.compact`, :func:`~retrieval.markup.tidy_lines`,
:func:`~retrieval.markup.ascii_mask`, the reading of simple
front matter (:func:`~retrieval.frontyaml.front_lines`), the token filter of
:meth:`~retrieval.tokenizer.Tokenizer.tokenize`, the counting of
:class:`~retrieval.analyze.TermCounter`, the grouping of a run's postings by term
(:func:`~retrieval.postings.grouped_by_term`), the gap coding of
:class:`~retrieval.gaps.DocGaps` and the scoring of
:meth:`~retrieval.index.InvertedIndex.score` and a directory's listing
(:meth:`~retrieval.scan.ContentScanner._list_python`); and, with no twin, the reading ahead of a
worker's files (:func:`~retrieval.analyze.reading_ahead`) and the stat-ing ahead of a full
scan (:meth:`~retrieval.scan.ContentScanner.changes`), which without it do nothing ahead. ``ARCHIVE_BOT_PURE_PYTHON=1`` turns it off (to
compare the two, or to rule it out).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

log = logging.getLogger(__name__)


def _load() -> ModuleType | None:
    if os.environ.get("ARCHIVE_BOT_PURE_PYTHON"):
        return None
    try:
        from . import _native
    except ImportError:
        log.info("the C extension retrieval._native is not built: indexing runs in pure Python (slower)")
        return None
    return _native


native = _load()


@contextmanager
def beside(name: str, *args: object) -> Iterator[None]:
    """While the body runs, the extension's function ``name`` runs on ``args`` in a thread, and
    is waited for at the end. For the functions that only warm the kernel's caches and hold
    no GIL while they do (``will_need``, ``stat_tree``): the body goes on meanwhile, and
    without the extension nothing runs beside it."""
    function = getattr(native, name, None)
    if function is None:
        yield
        return
    thread = threading.Thread(target=function, args=args, daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join()
