"""The README's results tables are what `roadsight summarize` makes of the kept runs.

Each table in the README's Results sits between `<!-- table: roadsight summarize sweep=DIR ... -->`
and `<!-- /table -->`; this test copies DIR (the runs kept in the repo, without their model files)
to a temporary place, runs that command on the copy, and requires the README's table rows to be
the summary.md's, figure for figure: nobody edits a result by hand, and anyone can re-check it.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess

import pytest

from roadsight.paths import REPO_ROOT
from tests.apps.test_record import ROADSIGHT

ENV = {**os.environ, "SDL_VIDEODRIVER": "offscreen"}

TABLE = re.compile(r"<!-- table: (roadsight summarize [^>]*?) -->\n(.*?)<!-- /table -->", re.S)


def readme_tables() -> list[tuple[str, list[str]]]:
    text = (REPO_ROOT / "README.md").read_text()
    return [(command, [line for line in body.splitlines() if line.startswith("|")])
            for command, body in TABLE.findall(text)]


def test_the_readme_has_results_tables():
    tables = readme_tables()
    assert tables, "README.md has no <!-- table: roadsight summarize ... --> block"
    for command, rows in tables:
        assert len(rows) >= 3, f"{command}: a header, a rule and at least one row"


@pytest.mark.parametrize(("command", "rows"), readme_tables() or [("none", [])],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_readme_table_is_rebuilt_from_the_kept_runs(tmp_path, command, rows):
    if command == "none":
        pytest.fail("README.md has no results table")
    words = shlex.split(command)[2:]
    sweep = next(w.split("=", 1)[1] for w in words if w.startswith("sweep="))
    copy = tmp_path / "sweep"
    shutil.copytree(REPO_ROOT / sweep, copy, ignore=shutil.ignore_patterns("*.zip", "*.pkl"))
    args = [w if not w.startswith("sweep=") else f"sweep={copy}" for w in words]
    proc = subprocess.run([ROADSIGHT, "summarize", *args, f"hydra.run.dir={tmp_path / 'run'}"],
                          capture_output=True, text=True, timeout=300, env=ENV)
    assert proc.returncode == 0, proc.stderr[-2000:]
    name = next((w.split("=", 1)[1] for w in words if w.startswith("name=")), "summary")
    rebuilt = [line for line in (copy / f"{name}.md").read_text().splitlines()
               if line.startswith("|")]
    assert rows == rebuilt
