"""A real headless Chromium for page tests: open a local file, read what the browser rendered.

Talks the Chrome DevTools Protocol over the browser's own websocket (``websockets``, already a
locked dependency), so no driver binary is needed: ``rendered_text(path)`` returns
``document.body.innerText`` — the text a reader sees, after the browser parsed the HTML and
unescaped its entities — and ``rendered_links(path)`` every link's resolved ``href``.

Chromium comes from the Debian packages (``apt-get install chromium``; ``make test`` installs it
when it can). Without it the page tests fail and say so: they are not skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome")


def chromium_path() -> str:
    for name in (os.environ.get("CLAIMSENTRY_CHROMIUM"), *CANDIDATES):
        if name and shutil.which(name):
            return shutil.which(name)
    raise AssertionError("the page tests need Chromium: apt-get install chromium (or set CLAIMSENTRY_CHROMIUM)")


class Browser:
    """One headless Chromium for a test module; ``evaluate(path, js)`` loads a file and runs js."""

    def __init__(self) -> None:
        self.profile = tempfile.mkdtemp(prefix="claimsentry-chromium-")
        self.proc = subprocess.Popen(
            [chromium_path(), "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--remote-debugging-port=0", f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.is_file() and port_file.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise AssertionError("headless Chromium did not start")
            time.sleep(0.1)
        self.port = int(port_file.read_text().splitlines()[0])

    def evaluate(self, path: Path, expression: str):
        from websockets.sync.client import connect

        url = Path(path).resolve().as_uri()
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/json/new?{url}", method="PUT")
        with urllib.request.urlopen(req, timeout=30) as resp:
            target = json.load(resp)
        try:
            with connect(target["webSocketDebuggerUrl"], max_size=None, open_timeout=30) as ws:
                msg_id = 0

                def call(method: str, **params):
                    nonlocal msg_id
                    msg_id += 1
                    ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
                    while True:
                        reply = json.loads(ws.recv(timeout=60))
                        if reply.get("id") == msg_id:
                            if "error" in reply:
                                raise AssertionError(f"Chromium: {reply['error']}")
                            return reply["result"]

                # the tab starts on about:blank, itself "complete": wait for this file's document
                ready = f"document.readyState === 'complete' && location.href === {json.dumps(url)} && document.body !== null"
                for _ in range(1200):
                    state = call("Runtime.evaluate", expression=ready, returnByValue=True)
                    if state["result"].get("value") is True:
                        break
                    time.sleep(0.05)
                else:
                    raise AssertionError(f"Chromium did not load {url}")
                result = call("Runtime.evaluate", expression=expression, returnByValue=True)
                return result["result"].get("value")
        finally:
            urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/close/{target['id']}", timeout=30).close()

    def text(self, path: Path) -> str:
        return self.evaluate(path, "document.body.innerText")

    def links(self, path: Path) -> list[str]:
        return self.evaluate(path, "Array.from(document.querySelectorAll('a[href]')).map(a => a.href)")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)
