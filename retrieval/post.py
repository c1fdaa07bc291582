"""The archive's unit: one news post, as the rest of the code sees it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Post:
    """A post loaded from a Markdown file with YAML front matter."""

    id: str
    title: str
    date: datetime | None
    url: str | None
    body: str
    path: str
    raw_title: str = ""
    tags: tuple[str, ...] = field(default=())
    categories: tuple[str, ...] = field(default=())

    def to_record(self) -> dict:
        """A JSON-ready dict (the index stores posts this way)."""
        return {
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
        )
