"""The evaluation's report page: one self-contained static HTML file (no server, no network).

`DIR/report.html` holds the metrics table (with 95% intervals where the metrics carry
`<key>_ci95` pairs), the per-episode table (sortable by clicking a column header: a few lines of
inline JavaScript), the episode videos playing inline (referenced by their path relative to the
page, so the page and `videos/` move together) and the plots (embedded as base64 PNG). All text
is escaped.
"""

from __future__ import annotations

import base64
import html
import math
import numbers
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

from roadsight.errors import UserInputError
from roadsight.io import atomic_write_bytes, flatten_keys

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CI_SUFFIX = "_ci95"

CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
#episodes th { cursor: pointer; background: #f3f3f3; user-select: none; }
#episodes th[data-order="asc"]::after { content: " \\25B2"; }
#episodes th[data-order="desc"]::after { content: " \\25BC"; }
.videos { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; }
video, img { max-width: 100%; }
"""

# Click a header: sort the rows by that column (numbers as numbers), again to reverse.
SORT_JS = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  table.querySelectorAll("thead th").forEach(function (th, col) {
    th.addEventListener("click", function () {
      var asc = th.dataset.order !== "asc";
      table.querySelectorAll("thead th").forEach(function (h) { delete h.dataset.order; });
      th.dataset.order = asc ? "asc" : "desc";
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      function key(row) {
        var cell = row.cells[col];
        var v = cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent;
        var n = Number(v);
        return v.trim() === "" || isNaN(n) ? v : n;
      }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        var c = (typeof x === "number" && typeof y === "number") ? x - y
          : String(x).localeCompare(String(y));
        return asc ? c : -c;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


def write_report(
    out_dir: str | Path,
    metrics: Mapping,
    episodes: Sequence[Mapping],
    videos: Sequence[str | Path],
    plots: Sequence[str | Path],
    title: str = "roadsight evaluation",
) -> Path:
    """Write DIR/report.html (atomically) and return its path."""
    out_dir = Path(out_dir)
    page = out_dir / "report.html"
    for path in (*videos, *plots):
        if not Path(path).is_file():
            raise UserInputError(f"report: {path} does not exist (videos and plots must be files)")
    body = [
        f"<h1>{_e(title)}</h1>",
        "<h2>Metrics</h2>", _metrics_table(metrics),
        f"<h2>Episodes ({len(episodes)})</h2>", _episodes_table(episodes),
    ]
    if videos:
        body += ["<h2>Videos</h2>", '<div class="videos">',
                 *(_video(out_dir, Path(v)) for v in videos), "</div>"]
    if plots:
        body += ["<h2>Plots</h2>", *(_plot(Path(p)) for p in plots)]
    text = "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f"<title>{_e(title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>",
        *body, f"<script>{SORT_JS}</script>", "</body>", "</html>", "",
    ])
    atomic_write_bytes(page, text.encode())
    return page


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value) -> str:
    """Numbers to 4 significant digits (integers as they are), lists joined, None as "-"."""
    if value is None:
        return "-"
    if isinstance(value, bool | numbers.Integral):
        return str(value)
    if isinstance(value, numbers.Real):
        return "nan" if math.isnan(value) else f"{float(value):.4g}"
    if isinstance(value, list | tuple):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def _metrics_table(metrics: Mapping) -> str:
    flat = flatten_keys(metrics)
    rows = []
    for key, value in flat.items():
        if key.endswith(CI_SUFFIX) and key[: -len(CI_SUFFIX)] in flat:
            continue  # shown beside its metric
        ci = flat.get(f"{key}{CI_SUFFIX}")
        interval = "" if ci is None else f"[{_fmt(ci[0])}, {_fmt(ci[1])}]"
        rows.append(f"<tr><td>{_e(key)}</td><td>{_e(_fmt(value))}</td>"
                    f"<td>{_e(interval)}</td></tr>")
    return ('<table id="metrics"><thead><tr><th>metric</th><th>value</th>'
            "<th>95% interval</th></tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table>")


def _episodes_table(episodes: Sequence[Mapping]) -> str:
    columns: list[str] = []
    for row in episodes:
        columns += [c for c in row if c not in columns]
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    rows = []
    for row in episodes:
        cells = []
        for c in columns:
            value = row.get(c)
            number = isinstance(value, numbers.Real) and not isinstance(value, bool)
            data = f' data-value="{_e(repr(float(value)))}"' if number else ""
            cells.append(f"<td{data}>{_e(_fmt(value))}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (f'<table id="episodes" class="sortable"><thead><tr>{head}</tr></thead><tbody>\n'
            + "\n".join(rows) + "\n</tbody></table>")


def _video(out_dir: Path, path: Path) -> str:
    rel = Path(os.path.relpath(path.resolve(), out_dir.resolve())).as_posix()
    return (f'<figure><video controls muted playsinline preload="metadata" '
            f'src="{_e(quote(rel))}"></video><figcaption>{_e(path.name)}</figcaption></figure>')


def _plot(path: Path) -> str:
    data = path.read_bytes()
    if not data.startswith(PNG_SIGNATURE):
        raise UserInputError(f"report: plot {path} is not a PNG file")
    b64 = base64.b64encode(data).decode()
    return (f'<figure><img alt="{_e(path.stem)}" src="data:image/png;base64,{b64}">'
            f"<figcaption>{_e(path.name)}</figcaption></figure>")
