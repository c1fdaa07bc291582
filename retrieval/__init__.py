"""Loading, indexing and searching the archive of posts (no Telegram here)."""

from .archive import Archive, ArchiveStats, RefreshResult
from .dates import DateRange
from .post import Post
from .query import Query, QueryError
from .search import NO_RERANK, Hit, Ranking, SearchPage
from .summary import Summary

__all__ = [
    "Archive", "ArchiveStats", "DateRange", "Hit", "NO_RERANK", "Post", "Query", "QueryError",
    "Ranking", "RefreshResult", "SearchPage", "Summary",
]
