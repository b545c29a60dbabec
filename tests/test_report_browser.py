"""The tear sheet in a real browser (headless Debian chromium): the verdict and the headline table sit
in the first screen (1400 x 1000), every image loads, and the page makes no external request.

Positions and image sizes are measured by a small script injected into a copy of the page (allowed
by its hash in the copy's Content-Security-Policy) and read back with --dump-dom. External requests
are read from chromium's net log of the unmodified page: a request made on behalf of the file://
page carries a file:// network isolation key (chromium's own background traffic does not).
Skips when chromium is not installed (.ci/run installs it).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from kronos_quant.report import write_report
from kronos_quant.report.tearsheet import CSP
from kronos_quant.workflow import run_backtest
from tests.report_data import CONTRACT_CONFIG, CONTRACT_PROVENANCE, contract_metrics, tiny_config

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed: apt-get install -y chromium "
                                                          "(.ci/run installs it)")]
WIDTH, HEIGHT = 1400, 1000
MEASURE = """addEventListener('load', () => {
  const box = (el) => { const b = el.getBoundingClientRect(); return {top: b.top, bottom: b.bottom, right: b.right}; };
  const out = {viewport: {w: innerWidth, h: innerHeight}, verdict: box(document.getElementById('verdict')),
    headline: box(document.getElementById('headline')),
    images: Array.from(document.images, (i) => ({alt: i.alt, complete: i.complete, w: i.naturalWidth}))};
  const pre = document.createElement('pre'); pre.id = 'kq-measure'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});"""


def _chromium(tmp: Path, url: str, *args: str) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
           f"--user-data-dir={tmp / 'profile'}", f"--window-size={WIDTH},{HEIGHT}", *args, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True)


def measure(page: Path, tmp: Path) -> dict:
    """Element boxes and image sizes of ``page`` as rendered at 1400 x 1000."""
    digest = base64.b64encode(hashlib.sha256(MEASURE.encode()).digest()).decode()
    html = page.read_text()
    assert f'content="{CSP}"' in html
    copy = tmp / "measure.html"
    copy.write_text(html.replace(f'content="{CSP}"', f"content=\"{CSP}; script-src 'sha256-{digest}'\"")
                    .replace("</body>", f"<script>{MEASURE}</script></body>"))
    dom = _chromium(tmp, copy.as_uri(), "--dump-dom", "--virtual-time-budget=5000").stdout
    found = re.search(r'<pre id="kq-measure">(.*?)</pre>', dom, re.S)
    assert found, "the measuring script did not run"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


def page_requests(page: Path, tmp: Path, screenshot: Path) -> list[str]:
    """URLs the page itself asked for while loading (screenshot taken in the same run)."""
    log = tmp / "net.json"
    _chromium(tmp, page.as_uri(), f"--log-net-log={log}", f"--screenshot={screenshot}")
    events = json.loads(log.read_text())["events"]
    return sorted({e["params"]["url"] for e in events if "url" in e.get("params", {})
                   and str(e["params"].get("network_isolation_key", "")).startswith("file://")})


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.refs += [v for k, v in attrs if k in ("src", "href", "srcset", "poster", "action", "data") and v]


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, Path]:
    """Two tear sheets: a real tiny run and the contract dict (with the tiny run's figures)."""
    tmp = tmp_path_factory.mktemp("pages")
    run = run_backtest(tiny_config(tmp / "tiny"), quiet=True)
    contract = write_report(tmp / "contract", metrics=contract_metrics(), config=CONTRACT_CONFIG,
                            provenance=CONTRACT_PROVENANCE, backtest=run.backtest,
                            baselines={name: run.baselines[name].backtest for name in ("random_walk",
                                                                                     "momentum(20, skip 1)")},
                            signals=run.scores, forward_returns=run.forward_returns, forecasts=run.forecasts,
                            panel=run.panel, figures=["equity", "calibration"])
    return {"tiny": run.artifacts["html"], "contract": contract["html"]}


def test_the_request_detector_sees_external_requests(tmp_path) -> None:
    """Control: a page that does load remote resources is caught (so a clean result means something)."""
    page = tmp_path / "leaky.html"
    page.write_text('<!DOCTYPE html><html><body><img src="http://127.0.0.1:9/x.png">'
                    '<link rel="stylesheet" href="https://example.invalid/a.css"></body></html>')
    assert page_requests(page, tmp_path, tmp_path / "leaky.png") == ["http://127.0.0.1:9/x.png",
                                                                    "https://example.invalid/a.css"]


@pytest.mark.parametrize("which", ["tiny", "contract"])
def test_first_screen_images_and_no_requests(pages, which, tmp_path) -> None:
    page = pages[which]
    box = measure(page, tmp_path)
    assert box["viewport"]["w"] == WIDTH  # the layout depends on the width; the screenshot's first screen is
    for part in ("verdict", "headline"):  # HEIGHT px tall: both wholly inside it
        assert 0 <= box[part]["top"] < box[part]["bottom"] <= HEIGHT, (part, box[part])
        assert box[part]["right"] <= WIDTH, (part, box[part])
    images = box["images"]
    assert len(images) == page.read_text().count("data:image/png;base64,") >= 2
    assert all(i["complete"] and i["w"] > 0 for i in images), [i for i in images if not i["w"]]

    shot = Path(page).with_name("first_screen.png")
    assert page_requests(page, tmp_path, shot) == []
    assert struct.unpack(">II", shot.read_bytes()[16:24]) == (WIDTH, HEIGHT)  # the PNG header's size
    links = _Links()
    links.feed(page.read_text())
    assert links.refs and all(r.startswith(("data:", "#")) for r in links.refs), \
        [r for r in links.refs if not r.startswith(("data:", "#"))]
