"""docs/azure.md lists exactly the Kubernetes permissions pgha uses (shared/platforms/aks/access.py);
`PGHA_UPDATE_README=1` rewrites the table from it."""

from __future__ import annotations

import os
from pathlib import Path

from shared.platforms.aks.access import table

DOCS = Path(__file__).parents[2] / "docs" / "azure.md"


def test_the_rbac_table_in_the_docs_is_the_one_the_doctor_checks() -> None:
    text = DOCS.read_text()
    start = text.index("-->\n", text.index("<!-- rbac table")) + 4
    end = text.index("<!-- end rbac table -->")
    if os.environ.get("PGHA_UPDATE_README"):
        DOCS.write_text(text[:start] + table() + text[end:])
        return
    assert text[start:end] == table(), "docs/azure.md's RBAC table differs from access.py: PGHA_UPDATE_README=1"
