"""The page at / in headless Chromium: generator grids and the latent plane show pictures drawn
through the infer API, clicking the plane decodes a new point, a token server asks for its token,
and the console stays free of errors.

Chromium is driven over the DevTools protocol on a pipe (--remote-debugging-pipe): JSON messages
ended by a NUL byte, written to its fd 3 and read from its fd 4. No browser-driver package needed.
"""

import json
import os
import shutil
import subprocess
import time

import pytest
from test_serve_helpers import Server, plane_run, vae_run

CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium on PATH (Debian: apt-get install chromium; scripts/test.sh installs it)"
)

# Count the lit pixels of every picture canvas: a blank (black) canvas has none.
PIXELS = """[...document.querySelectorAll("canvas.grid, canvas.decoded")].map((c) => {
  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
  let lit = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i] > 25) lit++;
  return {kind: c.className, width: c.width, height: c.height, lit};
})"""


class Browser:
    """Headless Chromium with one page, spoken to over the DevTools pipe."""

    def __init__(self, tmp_path):
        to_chrome, self._writer = os.pipe()
        self._reader, from_chrome = os.pipe()
        flags = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--remote-debugging-pipe",
            "--window-size=1200,900",
            "about:blank",
        ]
        # bash puts the two pipe ends on the descriptors Chromium expects, 3 (in) and 4 (out).
        self.process = subprocess.Popen(
            ["bash", "-c", f'exec "$0" "$@" 3<&{to_chrome} 4>&{from_chrome}', CHROMIUM, *flags],
            pass_fds=(to_chrome, from_chrome),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_chrome)
        os.close(from_chrome)
        self._buffer, self._next_id, self.events = b"", 0, []
        target = next(t for t in self.call("Target.getTargets")["targetInfos"] if t["type"] == "page")
        self.session = self.call("Target.attachToTarget", targetId=target["targetId"], flatten=True)["sessionId"]
        for domain in ("Runtime", "Log", "Page"):
            self.call(f"{domain}.enable", session=True)

    def _receive(self) -> dict:
        while b"\0" not in self._buffer:
            chunk = os.read(self._reader, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed its DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, session: bool = False, **params) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._writer, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def evaluate(self, expression: str):
        result = self.call(
            "Runtime.evaluate", session=True, expression=expression, returnByValue=True, awaitPromise=True
        )
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if value := self.evaluate(expression):
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {expression}; console: {self.console_errors()}")

    def click(self, x: float, y: float) -> None:
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", session=True, type=kind, x=x, y=y, button="left", clickCount=1)

    def console_errors(self) -> list:
        errors = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                errors.append(" ".join(str(a.get("value", a.get("description"))) for a in params["args"]))
            elif method == "Runtime.exceptionThrown":
                errors.append(params["exceptionDetails"].get("exception", {}).get("description", "exception"))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                errors.append(params["entry"]["text"])
        return errors

    def close(self) -> None:
        self.process.kill()
        self.process.wait()
        os.close(self._writer)
        os.close(self._reader)


@pytest.fixture
def browser(tmp_path):
    browser = Browser(tmp_path)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return {"vae": vae_run(tmp_path_factory), "plane": plane_run(tmp_path_factory)}


def test_grids_and_plane_show_pictures_without_console_errors(runs, browser, tmp_path):
    server = Server(runs["vae"], runs["plane"], "--quiet", log=tmp_path / "serve.log")
    try:
        browser.call("Page.navigate", session=True, url=server.url + "/")
        browser.wait_for("document.body.dataset.ready === '1'")
        canvases = browser.evaluate(PIXELS)
        grids = [c for c in canvases if c["kind"] == "grid"]
        planes = [c for c in canvases if c["kind"] == "decoded"]
        assert len(grids) == 2 and len(planes) == 1, canvases  # one grid per generator; the 2-d decoder's plane
        assert all(c["lit"] > 0.05 * c["width"] * c["height"] for c in canvases), canvases
        before = browser.evaluate("document.querySelector('.plane').parentNode.nextElementSibling.textContent")
        box = browser.evaluate(
            "(() => { const b = document.querySelector('.plane').getBoundingClientRect(); "
            "return [b.left, b.top, b.width]; })()"
        )
        browser.click(box[0] + 0.15 * box[2], box[1] + 0.8 * box[2])
        after = browser.wait_for(
            f"(() => {{ const t = document.querySelector('.plane').parentNode"
            f".nextElementSibling.textContent; return t !== {json.dumps(before)} && t; }})()"
        )
        assert after.startswith("z = [")
        assert browser.console_errors() == []
    finally:
        assert server.stop() == 0


def test_page_asks_for_the_token_and_then_draws(runs, browser, tmp_path):
    server = Server(runs["vae"], "--token", "t0ken", "--quiet", log=tmp_path / "serve.log")
    try:
        browser.call("Page.navigate", session=True, url=server.url + "/")
        browser.wait_for("getComputedStyle(document.getElementById('token')).display === 'block'")
        assert browser.evaluate("document.querySelectorAll('canvas.grid').length") == 0
        browser.evaluate(
            "document.getElementById('token-input').value = 't0ken'; "
            "document.getElementById('token-form').requestSubmit(); true"
        )
        browser.wait_for("document.body.dataset.ready === '1'")
        (grid,) = browser.evaluate(PIXELS)
        assert grid["lit"] > 0.05 * grid["width"] * grid["height"]
        assert browser.console_errors() == []
    finally:
        assert server.stop() == 0
