"""Write docs/codes.md, the one catalogue of finding codes, from the checks' catalogues.

Every code, its title, why and fix are written once, in the check's ``CheckInfo.codes`` (or
the engine's ``RUN`` catalogue); this page is generated from them.

Usage: ``python tools/codes_doc.py`` rewrites docs/codes.md; ``--check`` changes nothing and
exits 1 when the page is out of date (tests/core/test_explain.py runs the same comparison).
"""

from __future__ import annotations

import sys
from pathlib import Path

from scim_readiness.engine.codes import catalogue_markdown
from scim_readiness.engine.registry import builtin_specs

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "codes.md"


def builtin_page() -> str:
    """The page for the built-in checks, in checklist order."""
    infos = sorted((spec.info for spec in builtin_specs()), key=lambda i: (i.checklist_item, i.id))
    return catalogue_markdown(infos)


def main(argv: list[str]) -> int:
    current = PAGE.read_text(encoding="utf-8") if PAGE.exists() else ""
    wanted = builtin_page()
    if "--check" in argv:
        if wanted != current:
            print("docs/codes.md is out of date: run python tools/codes_doc.py")
            return 1
        return 0
    if wanted != current:
        PAGE.write_text(wanted, encoding="utf-8")
        print("docs/codes.md rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
