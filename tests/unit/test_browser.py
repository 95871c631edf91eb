"""tests/browser.py against a static page served on loopback: geometry of inline SVG, recorded requests, screenshots,
script errors, and no Chromium process left behind."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.browser import Browser, BrowserError, Page, leftovers, requires_chromium

pytestmark = requires_chromium

OFF_ORIGIN = "http://example.invalid/x.png"
# 640 CSS px wide for a 320-unit viewBox: every SVG unit is 2 px on screen.
PAGE = f"""<!doctype html><html><head><style>body {{ margin: 0 }}</style></head><body>
<h1 id="title">pgha status</h1>
<svg id="chart" width="640" height="200" viewBox="0 0 320 100" style="display: block">
  <rect id="band" x="100" y="10" width="50" height="80" fill="steelblue"/>
  <rect class="tick" x="0" y="95" width="1" height="5"/><rect class="tick" x="160" y="95" width="1" height="5"/>
</svg>
<img src="{OFF_ORIGIN}" alt="">
</body></html>"""


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/stall":  # answers too late for a short load timeout
            time.sleep(2)
        body = PAGE.encode()
        with contextlib.suppress(ConnectionError):  # the browser may have given up on /stall
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def page(site: str) -> Iterator[Page]:
    with Browser() as browser:
        yield browser.open(f"{site}/")


def test_svg_geometry_follows_the_viewbox(page: Page) -> None:
    chart, band = page.rect("#chart"), page.rect("#band")
    scale = chart["width"] / 320
    assert chart["width"] == pytest.approx(640, abs=1)
    assert band["x"] == pytest.approx(chart["x"] + 100 * scale, abs=1)
    assert band["width"] == pytest.approx(50 * scale, abs=1)
    assert band["y"] == pytest.approx(chart["y"] + 10 * scale, abs=1)
    assert [r["x"] for r in page.rects(".tick")] == pytest.approx([chart["x"], chart["x"] + 320], abs=1)
    assert page.text("#title") == "pgha status"
    assert page.evaluate("[innerWidth, innerHeight]") == [1280, 900]
    with pytest.raises(BrowserError, match="no element"):
        page.rect("#missing")
    assert page.rects("#missing") == []


def test_every_request_is_recorded(page: Page, site: str) -> None:
    assert page.requests[0] == f"{site}/"
    assert OFF_ORIGIN in page.requests


def test_screenshot_is_a_png(page: Page, tmp_path: Path) -> None:
    shot = page.screenshot(tmp_path / "page.png")
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_evaluate_raises_on_a_script_error(page: Page) -> None:
    assert page.evaluate("Promise.resolve(6 * 7)") == 42
    with pytest.raises(BrowserError, match="ReferenceError: nope is not defined"):
        page.evaluate("nope.at(0)")
    with pytest.raises(BrowserError, match="boom"):
        page.evaluate("Promise.reject(new Error('boom'))")


def test_a_load_timeout_is_an_error(page: Page, site: str) -> None:
    with pytest.raises(BrowserError, match="did not load"):
        page.goto(f"{site}/stall", timeout=0.5)
    page.goto(f"{site}/")  # the tab is usable afterwards
    assert page.text("#title") == "pgha status"


def test_no_process_is_left(site: str) -> None:
    started = time.monotonic()
    with pytest.raises(ZeroDivisionError), Browser() as browser:  # a failing test body ends it too
        assert browser.pid is not None and leftovers(browser.pid, browser.profile)
        1 / 0  # noqa: B018
    assert time.monotonic() - started < 5
    assert browser.profile is not None and not browser.profile.exists()
    assert leftovers(browser.pid, browser.profile) == []
