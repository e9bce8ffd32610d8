"""The requirement catalogue: every testable ASGI / RFC rule with a stable ID.

Loaded from ``requirements.json`` (generated from the shared spec catalogue by
scripts/import_catalogue.py). Scenarios name the rows they cover; coverage and the
requirement text in failure messages come from here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

__all__ = ["Requirement", "all_requirements", "requirement"]


@dataclass(frozen=True)
class Requirement:
    id: str
    section: int
    section_title: str
    level: str
    ref: str
    text: str


@cache
def all_requirements() -> dict[str, Requirement]:
    raw = json.loads(resources.files("asgi_conformance").joinpath("requirements.json").read_text("utf-8"))
    return {
        row["id"]: Requirement(
            id=row["id"],
            section=int(row["section"]),
            section_title=row["section_title"],
            level=row["level"],
            ref=row["ref"],
            text=row["text"],
        )
        for row in raw["requirements"]
    }


def requirement(requirement_id: str) -> Requirement | None:
    return all_requirements().get(requirement_id)
