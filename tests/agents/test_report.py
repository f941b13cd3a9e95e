"""The report page: tables, intervals, escaping, embedded plots; headless Chromium renders it,
sorts the episode table and plays the first video."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import cv2
import numpy as np
import pytest

from agents.report import write_report
from agents.video import StepText, compose_frame, episode_writer
from roadsight.errors import UserInputError

METRICS = {"episodes": 3, "return_mean": 4.25, "return_mean_ci95": [1.5, 7.0],
           "crash_rate": 0.5, "crash_rate_ci95": [0.1, 0.9],
           "collision_rate_by_class": {"vehicle": 0.25, "pedestrian": 0.125}}
EPISODES = [{"episode": 0, "seed": 100, "return": 3.0, "crashed_into": None},
            {"episode": 1, "seed": 101, "return": 10.5, "crashed_into": "pedestrian"},
            {"episode": 2, "seed": 102, "return": -1.25, "crashed_into": "<script>x()</script>"}]
N_FRAMES, FPS = 8, 2.0


class _Tables(HTMLParser):
    """Rows of cell texts per table id; attributes of <video> and <img>."""

    def __init__(self):
        super().__init__()
        self.tables, self.media, self.table, self.row = {}, [], None, None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.table = self.tables.setdefault(dict(attrs)["id"], [])
        elif tag == "tr":
            self.row = []
            self.table.append(self.row)
        elif tag in ("td", "th"):
            self.row.append("")
        elif tag in ("video", "img"):
            self.media.append((tag, dict(attrs)))

    def handle_data(self, data):
        if self.row is not None and self.row:
            self.row[-1] += data

    def handle_endtag(self, tag):
        if tag == "tr":
            self.row = None


def _artefacts(out: Path) -> tuple[list[Path], list[Path]]:
    """One 8-frame episode video (2 Hz: 4 s) and one PNG plot."""
    with episode_writer(out, 0, FPS) as writer:
        for i in range(N_FRAMES):
            image = np.full((64, 96, 3), 20 * i, np.uint8)
            writer.append(compose_frame(image, StepText(i / FPS, 5.0, "IDLE")))
    _, png = cv2.imencode(".png", np.zeros((20, 30, 3), np.uint8))
    plot = out / "plots" / "crash_rate.png"
    plot.parent.mkdir()
    plot.write_bytes(png.tobytes())
    return [out / "videos" / "episode_000.mp4"], [plot]


def test_page_tables_intervals_escaping_and_embedded_plot(tmp_path):
    videos, plots = _artefacts(tmp_path)
    page = write_report(tmp_path, METRICS, EPISODES, videos, plots)
    assert page == tmp_path / "report.html"
    text = page.read_text()
    parsed = _Tables()
    parsed.feed(text)
    metrics = {row[0]: row[1:] for row in parsed.tables["metrics"][1:]}
    assert metrics["return_mean"] == ["4.25", "[1.5, 7]"]
    assert metrics["crash_rate"] == ["0.5", "[0.1, 0.9]"] and metrics["episodes"] == ["3", ""]
    assert metrics["collision_rate_by_class.pedestrian"] == ["0.125", ""]
    assert "return_mean_ci95" not in metrics
    episodes = parsed.tables["episodes"]
    assert episodes[0] == ["episode", "seed", "return", "crashed_into"] and len(episodes) == 4
    assert episodes[3][3] == "<script>x()</script>"  # shown as text ...
    assert "<script>x()" not in text and "&lt;script&gt;x()" in text  # ... never run
    (_, video), (_, img) = parsed.media
    assert video["src"] == "videos/episode_000.mp4" and "controls" in video and "muted" in video
    assert base64.b64decode(img["src"].removeprefix("data:image/png;base64,")) == \
        plots[0].read_bytes()
    assert not re.search(r"(src|href)=\"(https?:)?//", text)  # nothing from the network


def test_missing_or_wrong_artefacts_name_the_file(tmp_path):
    videos, plots = _artefacts(tmp_path)
    with pytest.raises(UserInputError, match="episode_009.mp4 does not exist"):
        write_report(tmp_path, METRICS, EPISODES, [tmp_path / "videos/episode_009.mp4"], plots)
    with pytest.raises(UserInputError, match="plot .*episode_000.mp4 is not a PNG"):
        write_report(tmp_path, METRICS, EPISODES, videos, videos)
    assert not (tmp_path / "report.html").exists()


# Test-only probe appended to a copy of the page: rows, a sort by "return" (two clicks:
# descending), then the first video's duration and its time once it has played a second (or ended).
PROBE = """<script>
(function () {
  var out = document.createElement("pre"); out.id = "probe"; document.body.appendChild(out);
  var state = {rows: document.querySelectorAll("#episodes tbody tr").length};
  var th = document.querySelectorAll("#episodes thead th")[2]; th.click(); th.click();
  state.order = Array.prototype.map.call(document.querySelectorAll("#episodes tbody tr"),
    function (r) { return r.cells[2].textContent; });
  var v = document.querySelector("video");
  function show() { out.textContent = JSON.stringify(state); }
  function go() {
    state.duration = v.duration; state.t0 = v.currentTime;
    var done = false;
    function finish(why) {
      if (done) { return; }
      done = true; state.t1 = v.currentTime; state.why = why;
      state.readyState = v.readyState; state.paused = v.paused; show();
    }
    // Event-driven: a busy machine may decode the first frame late, and the page's timers run
    // on Chromium's virtual clock, so a fixed wait after play() can read 0 on a loaded runner.
    v.addEventListener("timeupdate", function () {
      if (v.currentTime >= Math.min(state.t0 + 1.0, v.duration)) { finish("timeupdate"); }
    });
    v.addEventListener("ended", function () { finish("ended"); });
    v.play().then(function () { setTimeout(function () { finish("timeout"); }, 15000); },
                  function (e) { state.error = String(e); show(); });
  }
  v.addEventListener("error", function () { state.error = "video error"; show(); });
  if (v.readyState >= 1) { go(); } else { v.addEventListener("loadedmetadata", go); }
  show();
})();
</script></body>"""


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        message = "headless Chromium not installed (apt-get install -y chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI=true requires it")
        pytest.skip(message)
    return found


# Chromium's virtual clock can run out before a starved decoder (a loaded 2-core runner) has
# started the media clock: a video that stayed at 0 is probed again, up to ATTEMPTS times; one
# that never plays still fails (every attempt's state is in the assertion message).
ATTEMPTS = 3


def probe_in_chromium(page: Path, profile: Path) -> dict:
    """Open a copy of `page` (beside it: the same relative video paths) with PROBE in headless
    Chromium; the probe's state: rows, order after sorting by the third column, the first
    video's duration and its time before and after play()."""
    chromium = _chromium()
    probe = page.with_name("probe.html")
    probe.write_text(page.read_text().replace("</body>", PROBE))
    tries = []
    for _ in range(ATTEMPTS):
        result = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--no-first-run",
             f"--user-data-dir={profile}", "--autoplay-policy=no-user-gesture-required",
             "--allow-file-access-from-files", "--virtual-time-budget=20000", "--dump-dom",
             probe.as_uri()],
            capture_output=True, text=True, timeout=120)
        found = re.search(r'<pre id="probe">(.*?)</pre>', result.stdout)
        assert found, f"no probe output; chromium stderr: {result.stderr[-2000:]}"
        state = json.loads(found.group(1))
        assert "error" not in state, state
        tries.append(state)
        if state.get("t1", 0) > state.get("t0", 0):
            break
    probe.unlink()
    state["attempts"] = tries
    return state


def test_page_renders_sorts_and_plays_in_headless_chromium(tmp_path):
    videos, plots = _artefacts(tmp_path)
    page = write_report(tmp_path, METRICS, EPISODES, videos, plots)
    state = probe_in_chromium(page, tmp_path / "profile")
    assert state["rows"] == len(EPISODES)
    assert state["order"] == ["10.5", "3", "-1.25"]  # numeric, descending after two clicks
    assert state["duration"] == pytest.approx(N_FRAMES / FPS, abs=0.1)
    assert state["t1"] > state["t0"] + 0.2, state  # it plays
