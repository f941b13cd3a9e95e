"""Printing suite results as rich tables."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def print_suite(result: dict, console: Console | None = None) -> None:
    console = console or Console(width=160)
    if "skipped" in result:
        console.print(f"suite {result['suite']} skipped: {result['skipped']}")
        return
    rows = result["rows"]
    table = Table(title=f"suite {result['suite']} ({result['unit']})")
    for key in rows[0]:
        table.add_column(key, justify="left" if key == "case" else "right")
    for row in rows:
        table.add_row(*(_fmt(v) for v in row.values()))
    console.print(table)
    for note in result.get("notes", []):
        console.print(note)
