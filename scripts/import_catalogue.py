"""Regenerate asgi_conformance/requirements.json from the shared spec catalogue.

The catalogue (spec-catalogue.md, one table row per testable requirement) is the
source of scenario IDs and coverage. The package carries the rows it needs (ID,
section, level, reference, paraphrase) so that coverage and failure messages work
after a plain install, without the Markdown file.

Usage: python scripts/import_catalogue.py ../shared/spec-catalogue.md
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

SECTION = re.compile(r"^## (\d+)\. (.+)$")
ROW = re.compile(r"^\| `([a-z0-9_.]+)` \| (.+?) \| (.+?) \| (.+?) \| (.+?) \| (.+?) \|$")


def parse(text: str) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    section: tuple[int, str] | None = None
    for line in text.splitlines():
        if m := SECTION.match(line):
            number = int(m.group(1))
            section = (number, m.group(2)) if 1 <= number <= 25 else None
            continue
        if section is None:
            continue
        if m := ROW.match(line):
            rows.append(
                {
                    "id": m.group(1),
                    "section": section[0],
                    "section_title": section[1],
                    "text": m.group(2),
                    "level": m.group(3),
                    "ref": m.group(4),
                }
            )
    return rows


def main() -> int:
    source = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/spec-catalogue.md")
    rows = parse(source.read_text(encoding="utf-8"))
    ids = [str(r["id"]) for r in rows]
    if len(ids) != len(set(ids)):
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        print(f"duplicate IDs in catalogue: {dupes}", file=sys.stderr)
        return 1
    out = Path(__file__).resolve().parent.parent / "asgi_conformance" / "requirements.json"
    out.write_text(json.dumps({"source": source.name, "requirements": rows}, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} requirements to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
