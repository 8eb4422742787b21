"""Drive headless Chromium over the DevTools protocol (CDP) on a pipe, with the stdlib only.

Chromium is started with ``--remote-debugging-pipe``: it reads CDP commands (JSON, each
terminated by a NUL byte) on file descriptor 3 and writes replies and events on 4. No port,
no websocket, no extra package. :func:`load_page` opens one URL in a fresh tab, waits for the
load event and a quiet period, and returns every console message, uncaught exception and log
entry (failed resource loads, CSP violations, ...) the page produced, plus a full-page
screenshot and the results of optional JavaScript probes.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
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
    "--hide-scrollbars",
    "--mute-audio",
)


class CDPError(RuntimeError):
    pass


@dataclass
class PageLoad:
    """What one page load produced."""

    url: str
    events: list[dict] = field(default_factory=list)
    screenshot: Path | None = None
    probes: dict = field(default_factory=dict)
    loaded: bool = False

    def problems(self) -> list[str]:
        """Console errors/asserts, uncaught exceptions and error-level log entries."""
        out = []
        for e in self.events:
            method, p = e.get("method"), e.get("params", {})
            if method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                text = " ".join(
                    str(a.get("value", a.get("description", ""))) for a in p.get("args", [])
                )
                out.append(f"console.{p['type']}: {text}")
            elif method == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                desc = d.get("exception", {}).get("description") or d.get("text", "")
                out.append(f"exception: {desc} ({d.get('url', '')}:{d.get('lineNumber', '')})")
            elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                entry = p["entry"]
                out.append(f"log {entry.get('source')}: {entry.get('text')} {entry.get('url', '')}")
            elif method == "Page.javascriptDialogOpening":
                out.append(f"dialog {p.get('type')}: {p.get('message')}")
        return out

    def warnings(self) -> list[str]:
        out = []
        for e in self.events:
            method, p = e.get("method"), e.get("params", {})
            if method == "Runtime.consoleAPICalled" and p.get("type") == "warning":
                out.append(
                    "console.warning: "
                    + " ".join(str(a.get("value", "")) for a in p.get("args", []))
                )
            elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "warning":
                out.append(f"log {p['entry'].get('source')}: {p['entry'].get('text')}")
        return out


class Chromium:
    """One headless Chromium process driven over ``--remote-debugging-pipe``."""

    def __init__(self, executable: str = CHROMIUM, *, timeout: float = 30.0):
        self.timeout = timeout
        self._profile = tempfile.mkdtemp(prefix="ncsproc-chromium-")
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        # the child needs the pipe ends exactly at fds 3 and 4: pass them at known high
        # numbers and let a tiny Python trampoline move them and exec chromium (no preexec_fn,
        # which is unsafe with threads in the parent; sh cannot address fds above 9)
        hi_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD_CLOEXEC, 20)
        hi_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD_CLOEXEC, 20)
        trampoline = (
            f"import os, sys; os.dup2({hi_r}, 3); os.dup2({hi_w}, 4); "
            f"os.close({hi_r}); os.close({hi_w}); os.execv(sys.argv[1], sys.argv[1:])"
        )
        self._stderr = open(Path(self._profile) / "stderr.log", "wb")  # noqa: SIM115
        try:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    trampoline,
                    executable,
                    *FLAGS,
                    f"--user-data-dir={self._profile}",
                    "--remote-debugging-pipe",
                    "about:blank",
                ],
                pass_fds=(hi_r, hi_w),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._stderr,
            )
        finally:
            for fd in (to_chrome_r, from_chrome_w, hi_r, hi_w):
                os.close(fd)
        self._buf = b""
        self._id = 0
        self._pending: list[dict] = []

    # ------------------------------------------------------------------ protocol
    def _send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            n = os.write(self._to_chrome, data)
            data = data[n:]
        return self._id

    def _recv(self, timeout: float) -> dict | None:
        end = time.monotonic() + timeout
        while b"\0" not in self._buf:
            left = end - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self._from_chrome], [], [], left)
            if ready:
                chunk = os.read(self._from_chrome, 1 << 20)
                if not chunk:
                    raise CDPError("chromium closed the DevTools pipe (it exited)")
                self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def call(
        self,
        method: str,
        params: dict | None = None,
        session: str | None = None,
        timeout: float | None = None,
    ) -> dict:
        i = self._send(method, params, session)
        end = time.monotonic() + (timeout or self.timeout)
        while True:
            msg = self._recv(max(0.0, end - time.monotonic()))
            if msg is None:
                raise CDPError(f"{method}: no reply within {timeout or self.timeout} s")
            if msg.get("id") == i:
                if "error" in msg:
                    raise CDPError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self._pending.append(msg)

    # ------------------------------------------------------------------ pages
    def load_page(
        self,
        url: str,
        *,
        screenshot: Path | None = None,
        probes: dict | None = None,
        width: int = 1280,
        height: int = 900,
        settle: float = 0.5,
    ) -> PageLoad:
        """Open ``url`` in a new tab; collect its events until the load event and ``settle``
        quiet seconds; evaluate ``probes`` (name -> JS expression, JSON-serialisable value);
        save a full-page PNG to ``screenshot``."""
        result = PageLoad(url)
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        self._pending.clear()
        for domain in ("Runtime.enable", "Log.enable", "Page.enable"):
            self.call(domain, session=session)
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        self.call("Page.navigate", {"url": url}, session=session)
        end = time.monotonic() + self.timeout
        quiet_since = None
        while time.monotonic() < end:
            msg = self._pending.pop(0) if self._pending else self._recv(0.1)
            if msg is None:
                if result.loaded:
                    quiet_since = quiet_since or time.monotonic()
                    if time.monotonic() - quiet_since >= settle:
                        break
                continue
            quiet_since = None
            if msg.get("sessionId") == session:
                result.events.append(msg)
                if msg.get("method") == "Page.loadEventFired":
                    result.loaded = True
                elif msg.get("method") == "Page.javascriptDialogOpening":  # alert(): dismiss
                    self._send("Page.handleJavaScriptDialog", {"accept": True}, session)
        for name, expr in (probes or {}).items():
            r = self.call(
                "Runtime.evaluate",
                {"expression": expr, "returnByValue": True, "awaitPromise": True},
                session=session,
            )
            if "exceptionDetails" in r:
                result.probes[name] = {"error": r["exceptionDetails"].get("text", "")}
            else:
                result.probes[name] = r.get("result", {}).get("value")
        # events raised by the probes (e.g. a click handler's error) count as well
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:
            msg = self._pending.pop(0) if self._pending else self._recv(0.05)
            if msg is not None and msg.get("sessionId") == session:
                result.events.append(msg)
        if screenshot is not None:
            shot = self.call(
                "Page.captureScreenshot",
                {"format": "png", "captureBeyondViewport": True},
                session=session,
                timeout=60,
            )
            screenshot.write_bytes(base64.b64decode(shot["data"]))
            result.screenshot = screenshot
        self.call("Target.closeTarget", {"targetId": target})
        return result

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except (CDPError, OSError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        for fd in (self._to_chrome, self._from_chrome):
            try:
                os.close(fd)
            except OSError:
                pass
        self._stderr.close()
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
