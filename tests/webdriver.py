"""A small W3C WebDriver client for Debian's chromium-driver, over plain HTTP (urllib).

Enough to open a page in headless Chromium, run JavaScript in it and take a full-page
screenshot; no selenium needed. Chromium starts with the flags that keep it off the
network (no background networking, component updates, sync or QUIC) and with a fresh
profile folder.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--mute-audio",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Browser:
    """Headless Chromium driven by chromedriver; a context manager that cleans up both."""

    def __init__(self, width: int = 1280, height: int = 900, timeout_s: float = 30.0) -> None:
        self.width, self.height, self.timeout_s = width, height, timeout_s
        self.profile = Path(tempfile.mkdtemp(prefix="saladpipe-chromium-"))
        self.port = _free_port()
        self.driver: subprocess.Popen[bytes] | None = None
        self.session: str | None = None

    def __enter__(self) -> Browser:
        self.driver = subprocess.Popen(
            [CHROMEDRIVER, f"--port={self.port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                if self._call("GET", "/status")["ready"]:
                    break
            except (urllib.error.URLError, ConnectionError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("chromedriver did not start")
            time.sleep(0.1)
        options = {
            "binary": CHROMIUM,
            "args": [
                *FLAGS,
                f"--user-data-dir={self.profile}",
                f"--window-size={self.width},{self.height}",
            ],
        }
        capabilities = {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}}
        self.session = self._call("POST", "/session", {"capabilities": capabilities})["sessionId"]
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        try:
            if self.session is not None:
                self._call("DELETE", f"/session/{self.session}")
        finally:
            if self.driver is not None:
                self.driver.terminate()
                self.driver.wait(timeout=10)
            shutil.rmtree(self.profile, ignore_errors=True)

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.loads(response.read())["value"]
        except urllib.error.HTTPError as exc:
            detail = json.loads(exc.read() or b"{}").get("value", {})
            raise RuntimeError(f"WebDriver {method} {path}: {detail.get('message', exc)}") from None

    def _session_call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._call(method, f"/session/{self.session}{path}", body)

    def console_errors(self) -> Any:
        """The page's SEVERE console and network entries that chromedriver kept so far."""
        return self._session_call("POST", "/se/log", {"type": "browser"})

    def open(self, path: Path) -> None:
        """Load a local file and wait for its load event."""
        self._session_call("POST", "/url", {"url": path.resolve().as_uri()})

    def run(self, script: str, *args: Any) -> Any:
        """Run a function body synchronously in the page; its `return` value comes back."""
        return self._session_call("POST", "/execute/sync", {"script": script, "args": list(args)})

    def run_async(self, script: str, *args: Any) -> Any:
        """Run a function body that calls `arguments[arguments.length - 1](value)` when done."""
        return self._session_call("POST", "/execute/async", {"script": script, "args": list(args)})

    def screenshot(self, out: Path) -> Path:
        """A PNG of the whole page, beyond the window, through the DevTools protocol."""
        result = self._session_call(
            "POST",
            "/goog/cdp/execute",
            {
                "cmd": "Page.captureScreenshot",
                "params": {"format": "png", "captureBeyondViewport": True},
            },
        )
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(base64.b64decode(result["data"]))
        return out


# Every chart with its drawn size and marks; the first mark's size proves it is drawn.
CHARTS_JS = """
return Array.from(document.querySelectorAll("svg.chart")).map(function (svg) {
  var box = svg.getBoundingClientRect();
  var marks = svg.querySelectorAll(".mark");
  var first = marks.length ? marks[0].getBBox() : {width: 0, height: 0};
  return {name: svg.dataset.chart, width: box.width, height: box.height,
          marks: marks.length, markWidth: first.width, markHeight: first.height};
});
"""

# Wait until every audio element has loaded its metadata (or failed), then report each
# with the data attributes of its row (the closest element matching arguments[0]).
AUDIO_JS = """
var done = arguments[arguments.length - 1];
var rowSelector = arguments[0];
var players = Array.from(document.querySelectorAll("audio"));
var pending = players.length;
function report() {
  done(players.map(function (a) {
    return {data: Object.assign({}, a.closest(rowSelector).dataset), state: a.readyState,
            duration: a.duration, error: a.error ? a.error.code : null};
  }));
}
if (!pending) { report(); }
players.forEach(function (a) {
  function settle() { pending -= 1; if (pending === 0) { report(); } }
  if (a.readyState >= 1 || a.error) { settle(); return; }
  a.addEventListener("loadedmetadata", settle, {once: true});
  a.addEventListener("error", settle, {once: true});
  a.load();
});
"""
