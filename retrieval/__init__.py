"""Loading, indexing and searching the archive of posts (no Telegram here).

This is the package's only door: the bot imports what is listed in ``__all__`` and nothing else.
"""

from .archive import Archive, ArchiveError, ArchiveStats, RefreshResult
from .dates import DateRange
from .post import Post
from .questions import Answer
from .when import describe as describe_dates
from .query import MAX_QUERY_CHARS, Query, QueryError, range_query
from .search import NO_RERANK, Hit, Ranking, SearchPage
from .summary import Summary, post_summary

__all__ = [
    "Answer", "describe_dates", "Archive", "ArchiveError", "ArchiveStats", "DateRange", "Hit", "MAX_QUERY_CHARS", "NO_RERANK", "Post",
    "Query", "QueryError", "Ranking", "RefreshResult", "SearchPage", "Summary", "post_summary", "range_query",
]
