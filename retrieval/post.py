"""The archive's unit: one news post, as the rest of the code sees it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Post:
    """A post loaded from a Markdown file with YAML front matter.

    ``url`` is the original article the post names (its "转入文章首发地址" link or a link
    field); ``page_url`` is the post's own page on its Hexo site, when the site is known.
    ``body`` is the plain text shown in summaries; ``code`` holds its code blocks, searchable
    but never shown. ``description`` is the author's own summary (front matter
    ``description`` or ``excerpt``), preferred to the opening sentences where there is one.
    """

    id: str
    title: str
    date: datetime | None
    url: str | None
    body: str
    path: str
    raw_title: str = ""
    tags: tuple[str, ...] = field(default=())
    categories: tuple[str, ...] = field(default=())
    page_url: str | None = None
    code: str = ""
    description: str | None = None
    updated: datetime | None = None

    @property
    def link(self) -> str | None:
        """Where a reader is sent: the original article, else the post's page on the site."""
        return self.url or self.page_url

    @property
    def searchable_body(self) -> str:
        """The body as it is indexed: the text and its code blocks."""
        return f"{self.body}\n{self.code}" if self.code else self.body

    def to_record(self) -> dict:
        """A JSON-ready dict (the index stores posts this way)."""
        record = {
            "id": self.id,
            "title": self.title,
            "raw_title": self.raw_title,
            "date": self.date.isoformat() if self.date else None,
            "url": self.url,
            "path": self.path,
            "tags": list(self.tags),
            "categories": list(self.categories),
            "body": self.body,
        }
        optional = {
            "page_url": self.page_url, "code": self.code, "description": self.description,
            "updated": self.updated.isoformat() if self.updated else None,
        }
        record.update((k, v) for k, v in optional.items() if v)
        return record

    @classmethod
    def from_record(cls, rec: dict) -> "Post":
        """Inverse of :meth:`to_record`."""
        return cls(
            id=rec["id"],
            title=rec["title"],
            raw_title=rec.get("raw_title", rec["title"]),
            date=datetime.fromisoformat(rec["date"]) if rec.get("date") else None,
            url=rec.get("url"),
            path=rec["path"],
            tags=tuple(rec.get("tags", ())),
            categories=tuple(rec.get("categories", ())),
            body=rec.get("body", ""),
            page_url=rec.get("page_url"),
            code=rec.get("code", ""),
            description=rec.get("description"),
            updated=datetime.fromisoformat(rec["updated"]) if rec.get("updated") else None,
        )
