"""Headless Chromium for tests that load pgha's server-rendered pages: the DOM, geometry, screenshots and every
network request, over the DevTools protocol with websocket-client (no browser driver, no extra dependency).

    with Browser() as browser:
        page = browser.open(url)
        assert page.rect("#band")["width"] == 100
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import websocket

CHROMIUM = shutil.which("chromium")
requires_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium: run scripts/setup.sh")
# Every host name but loopback fails at once: a page under test reaches nothing outside, and waits on no DNS.
LOOPBACK_ONLY = "MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"


FLAGS = ["--headless=new", "--remote-debugging-port=0", "--disable-gpu", "--no-first-run", "--no-default-browser-check"]
# Nothing of Chromium's own on the network: this machine's is closed, and it would only slow a start.
QUIET = ["--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic"]


class BrowserError(RuntimeError):
    pass


class Page:
    """The browser's one tab: a message pump that matches replies by id and keeps events for later waits."""

    def __init__(self, ws: websocket.WebSocket, timeout: float, width: int, height: int) -> None:
        self._ws, self.timeout, self._next_id = ws, timeout, 0
        self.events: list[dict[str, Any]] = []
        for domain in ("Page", "Network", "Runtime"):
            self.send(f"{domain}.enable")
        self.send("Page.setLifecycleEventsEnabled", enabled=True)
        # --window-size alone leaves a 757 px high viewport in headless=new (room for a window's UI): set it exactly.
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def _receive(self, deadline: float) -> dict[str, Any]:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([self._ws.sock], [], [], remaining)[0]:
            raise BrowserError("timed out waiting for Chromium")
        message = json.loads(self._ws.recv())
        if "method" in message:
            self.events.append(message)
        return message

    def _drain(self) -> None:
        """Reads the events already sent, without waiting: requests made after the load are seen too."""
        while select.select([self._ws.sock], [], [], 0)[0]:
            self._receive(time.monotonic() + self.timeout)

    def send(self, method: str, timeout: float | None = None, **params: Any) -> dict[str, Any]:
        """One protocol command; returns its result, raises on its error or when no reply comes in time."""
        self._next_id += 1
        self._ws.send(json.dumps({"id": self._next_id, "method": method, "params": params}))
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            message = self._receive(deadline)
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error'].get('message')}")
                return message.get("result", {})

    def wait_event(self, method: str, timeout: float | None = None, **match: Any) -> dict[str, Any]:
        """The first event `method` kept since the last goto() whose params have the `match` values, waiting for it."""
        deadline = time.monotonic() + (timeout or self.timeout)
        seen = 0
        while True:
            for event in self.events[seen:]:
                if event["method"] == method and all(event["params"].get(k) == v for k, v in match.items()):
                    return event
            seen = len(self.events)
            try:
                self._receive(deadline)
            except BrowserError:
                raise BrowserError(f"no {method} within {timeout or self.timeout}s") from None

    def goto(self, url: str, timeout: float | None = None) -> Page:
        """Navigates and waits for the load event, both within one timeout; the requests recorded start afresh."""
        self._drain()
        self.events.clear()
        deadline = time.monotonic() + (timeout or self.timeout)
        try:
            result = self.send("Page.navigate", timeout=deadline - time.monotonic(), url=url)
            if result.get("errorText"):
                raise BrowserError(result["errorText"])
            if "loaderId" in result:  # else a same-document navigation, which loads nothing
                # The load event of this navigation's document: a late one from an earlier navigation does not count.
                left = max(deadline - time.monotonic(), 0.001)
                self.wait_event("Page.lifecycleEvent", left, name="load", loaderId=result["loaderId"])
        except BrowserError as e:
            raise BrowserError(f"{url} did not load within {timeout or self.timeout}s: {e}") from None
        return self

    @property
    def requests(self) -> list[str]:
        """The URL of every request the page made since the last goto(), in order, whatever its origin."""
        self._drain()
        return [e["params"]["request"]["url"] for e in self.events if e["method"] == "Network.requestWillBeSent"]

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JS expression (promises awaited); a thrown error raises BrowserError."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError(details.get("exception", {}).get("description") or details.get("text"))
        return result["result"].get("value")

    def rects(self, selector: str) -> list[dict[str, float]]:
        """Viewport rectangles (CSS px) of every match, as getBoundingClientRect gives them."""
        return self.evaluate(
            f"[...document.querySelectorAll({json.dumps(selector)})].map(e => {{"
            "const r = e.getBoundingClientRect(); return {x: r.x, y: r.y, width: r.width, height: r.height}; })"
        )

    def rect(self, selector: str) -> dict[str, float]:
        found = self.rects(selector)
        if not found:
            raise BrowserError(f"no element matches {selector!r}")
        return found[0]

    def text(self, selector: str) -> str:
        """The first match's textContent; raises when nothing matches."""
        value = self.evaluate(f"document.querySelector({json.dumps(selector)})?.textContent ?? null")
        if value is None:
            raise BrowserError(f"no element matches {selector!r}")
        return value

    def screenshot(self, path: str | Path) -> Path:
        """A PNG of the whole page, beyond the viewport too."""
        metrics = self.send("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        data = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True, clip=clip)["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)


class Browser:
    """One headless Chromium in a process group and profile of its own, both gone on exit, failure included."""

    def __init__(self, timeout: float = 10, host_rules: str = LOOPBACK_ONLY, width: int = 1280, height: int = 900):
        self.timeout, self.host_rules, self.size = timeout, host_rules, (width, height)
        self.process: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None  # the process group's id, kept after close() for checks
        self.profile: Path | None = None
        self._page: Page | None = None

    def __enter__(self) -> Browser:
        if CHROMIUM is None:
            raise BrowserError("chromium: run scripts/setup.sh")
        self.profile = Path(tempfile.mkdtemp(prefix="pgha-chromium-"))
        try:
            self._start(self.profile)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self, profile: Path) -> None:
        size, rules = f"--window-size={self.size[0]},{self.size[1]}", f"--host-resolver-rules={self.host_rules}"
        args = [str(CHROMIUM), *FLAGS, *QUIET, f"--user-data-dir={profile}", size, rules, "about:blank"]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")
        log = (profile / "stderr.log").open("wb")
        # Chromium's own config and crash database go in the profile too: nothing is left in $HOME.
        env = {**os.environ, "XDG_CONFIG_HOME": str(profile), "XDG_CACHE_HOME": str(profile)}
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, start_new_session=True
        )
        log.close()
        self.pid = self.process.pid
        port_file, deadline = profile / "DevToolsActivePort", time.monotonic() + self.timeout
        while True:
            if self.process.poll() is not None:
                raise BrowserError(f"chromium exited {self.process.returncode}: {self._log_tail()}")
            if time.monotonic() > deadline:
                raise BrowserError(f"chromium did not start within {self.timeout}s: {self._log_tail()}")
            lines = port_file.read_text().splitlines() if port_file.exists() else []
            if len(lines) >= 2:  # the file is complete once its second line, the browser's path, is there
                pages = [t for t in self._targets(int(lines[0])) if t.get("type") == "page"]
                if pages:
                    break
            time.sleep(0.05)
        # No Origin header: Chromium refuses a DevTools websocket whose origin it was not told to allow.
        ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=self.timeout, suppress_origin=True)
        self._page = Page(ws, self.timeout, *self.size)

    @staticmethod
    def _targets(port: int) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=2) as response:
            return json.load(response)

    def _log_tail(self) -> str:
        assert self.profile is not None
        return (self.profile / "stderr.log").read_text(errors="replace")[-2000:]

    def open(self, url: str, timeout: float | None = None) -> Page:
        """Loads url in the browser's one tab (each call reuses it) and returns that page once loaded."""
        if self._page is None:
            raise BrowserError("the browser is not started: use it as a context manager")
        return self._page.goto(url, timeout)

    def close(self) -> None:
        """Ends the whole process group (renderers and zygotes too), then anything else naming the profile (Chromium's
        crash handlers start sessions of their own), and removes the profile."""
        if self._page is not None:
            with contextlib.suppress(Exception):  # an orderly exit first: it takes ~0.1 s
                self._page._ws.send(json.dumps({"id": 0, "method": "Browser.close"}))
                assert self.process is not None
                self.process.wait(2)
            self._page._ws.close()
            self._page = None
        if self.process is not None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, sig)
                for pid in leftovers(self.process.pid, self.profile):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(3)
                if not leftovers(self.process.pid, self.profile, within=2):
                    break
            self.process = None
        if self.profile is not None:
            shutil.rmtree(self.profile, ignore_errors=True)


def leftovers(pgid: int, profile: Path | None = None, within: float = 0) -> list[int]:
    """Live (not zombie) processes in group pgid or whose command line names profile, after waiting up to `within`
    seconds for them to go. Zombies are left out: this machine's PID 1 does not reap the orphans it inherits."""
    deadline, needle = time.monotonic() + within, str(profile).encode() if profile else None
    while True:
        found = []
        for proc in Path("/proc").glob("[0-9]*"):
            with contextlib.suppress(OSError):
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
                named = needle is not None and needle in (proc / "cmdline").read_bytes()
                if fields[0] != "Z" and (int(fields[2]) == pgid or named):
                    found.append(int(proc.name))
        if not found or time.monotonic() >= deadline:
            return found
        time.sleep(0.05)
