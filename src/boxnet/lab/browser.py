"""Debian's headless Chromium in a lab namespace, driven over `--remote-debugging-pipe`.

The DevTools protocol over the pipe is JSON messages ended by NUL on fds 3 (to Chromium) and 4
(from it), so no websocket client is needed. Used by the topology page test: load the page from
a lab daemon's `--ui` address, read the DOM as it changes, keep a screenshot.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from boxnet.lab.netns import Netns
from boxnet.lab.proc import LabError

REPLY_TIMEOUT = 30.0


class Browser:
    def __init__(self, ns: Netns, url: str, width: int = 1400, height: int = 900) -> None:
        chromium = shutil.which("chromium")
        if chromium is None:
            raise LabError("chromium is missing: apt-get install chromium (make deb)")
        self.profile = Path(tempfile.mkdtemp(prefix="boxnet-chromium-"))
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def plumb() -> None:  # in the child: the pipe ends on the fds Chromium expects
            os.dup2(to_child_r, 3)
            os.dup2(from_child_w, 4)

        argv = [
            chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-dev-shm-usage", "--remote-debugging-pipe", f"--user-data-dir={self.profile}",
            f"--window-size={width},{height}", url,
        ]  # fmt: skip
        self.proc = ns.popen(
            argv,
            preexec_fn=plumb,
            pass_fds=(3, 4),  # kept open by number: close_fds runs after preexec_fn
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._next_id = 0
        self._buf = b""
        targets = self.call("Target.getTargets")["targetInfos"]
        page = next(t for t in targets if t["type"] == "page")
        attached = self.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)
        self.session = attached["sessionId"]

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + REPLY_TIMEOUT
        while True:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                reply = json.loads(raw)
                if reply.get("id") == self._next_id:
                    if "error" in reply:
                        raise LabError(f"chromium {method}: {reply['error']}")
                    return dict(reply.get("result", {}))
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._from_child], [], [], max(0.0, left))
            if not ready:
                raise LabError(f"chromium did not answer {method} within {REPLY_TIMEOUT} s")
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                raise LabError(f"chromium closed the pipe during {method}")
            self._buf += chunk

    def evaluate(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", self.session, expression=expression, returnByValue=True
        )
        if "exceptionDetails" in result:
            raise LabError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, tries: int = 100, pause: float = 0.1) -> Any:
        """Evaluate until the value is truthy (bounded); the last value otherwise."""
        value = None
        for _ in range(tries):
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(pause)
        return value

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", self.session, format="png")["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (LabError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._to_child, self._from_child):
            os.close(fd)
        shutil.rmtree(self.profile, ignore_errors=True)
