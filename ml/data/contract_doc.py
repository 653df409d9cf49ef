"""docs/data_contract.md, written from `ml.contract`: the raw-data contract in the repository's own docs.

The tables, columns, types, keys, rules and point-in-time dates live in `ml.contract.TABLES` and
`PUBLISH_DATE`; this renders them, so the document cannot drift from what ingest enforces
(`tests/test_contract_doc.py` compares the two). Regenerate with `python -m ml.data.contract_doc`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from ml.contract import OPTIONAL_TABLES, PUBLISH_DATE, REQUIRED_TABLES, TABLES
from ml.data.views import view_requires

DOC = Path(__file__).resolve().parents[2] / "docs" / "data_contract.md"
TYPES = {"date": "date (YYYY-MM-DD)", "str": "text", "float": "number", "int": "integer", "side": "`B` or `S`"}


def _views_fed_by(table: str) -> list[str]:
    return [v for v, needs in view_requires().items() if table in needs]


def _views_fed_by_column(table: str, column: str) -> list[str]:
    return [v for v, needs in view_requires().items() if f"{table}.{column}" in needs]


def contract_markdown() -> str:
    """The whole contract as markdown."""
    out = [
        "# The raw-data contract",
        "",
        "What `aurora ingest` accepts and `aurora generate` writes: one Parquet (or CSV, for ingest) file per",
        "table under `$AURORA_DATA_DIR/raw/`. Generated from `ml/contract.py` by",
        "`python -m ml.data.contract_doc`; do not edit by hand.",
        "",
        f"Required tables: {', '.join(f'`{t}`' for t in REQUIRED_TABLES)}. Optional: "
        + ", ".join(f"`{t}`" for t in OPTIONAL_TABLES)
        + ". A feature view whose inputs are missing is skipped, and the log says why.",
        "",
        "**Point in time.** A row becomes public knowledge on its table's publication date (below). No",
        "feature dated t reads a row published after t. A fact about an earlier period (a quarter's",
        "earnings, a settlement date's short interest) counts from its publication, never from the period.",
        "",
    ]
    for name, table in TABLES.items():
        out += [f"## `{name}`" + (" (required)" if name in REQUIRED_TABLES else " (optional)"), ""]
        if name in PUBLISH_DATE:
            out.append(f"- Public from: `{PUBLISH_DATE[name]}`.")
        if table.key:
            out.append(f"- Key (unique): {', '.join(f'`{k}`' for k in table.key)}.")
        for later, earlier in table.not_before:
            out.append(f"- `{later}` may not precede `{earlier}`.")
        if table.positive:
            out.append(f"- Positive: {', '.join(f'`{c}`' for c in table.positive)}.")
        if table.non_negative:
            out.append(f"- Non-negative: {', '.join(f'`{c}`' for c in table.non_negative)}.")
        views = _views_fed_by(name)
        if views:
            out.append(f"- Feature views that need it: {', '.join(f'`{v}`' for v in views)}.")
        for column in table.optional_columns:
            needing = _views_fed_by_column(name, column)
            if needing:
                out.append(f"- Optional column `{column}` is needed by {', '.join(f'`{v}`' for v in needing)}.")
        out += ["", "| column | type | required | may be empty |", "|---|---|---|---|"]
        for column, kind in table.columns.items():
            required = "no" if column in table.optional_columns else "yes"
            nullable = "yes" if column in table.nullable else "no"
            out.append(f"| `{column}` | {TYPES.get(kind, kind)} | {required} | {nullable} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DOC
    target.write_text(contract_markdown())
    print(f"wrote {target}")
