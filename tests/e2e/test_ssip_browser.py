"""End to end: a kiosk page's `speechSynthesis` in headless Firefox (Debian's
firefox-esr, which speaks through libspeechd) reaches the daemon's SSIP socket, sees its
voices, is heard, and gets its `onstart` and `onend`."""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import os
import shutil
import signal
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.common import KEY, heard_and_quiet, record_until
from tests.harness.daemon import Daemons
from tests.harness.pulse import Recorder
from tests.harness.tone_server import ToneServer

FIREFOX = shutil.which("firefox-esr")
TEXT = "Welcome to the museum."
BROWSER_TIMEOUT = 90.0
"""Seconds the page may take to load, list the voices and hear its speech end: a first
start of Firefox in a new profile takes several seconds on a busy machine."""
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>kiosk</title></head><body><script>
function report(what) { fetch('/log?' + encodeURIComponent(what)); }
let spoken = false;
function speak() {
  const voices = speechSynthesis.getVoices();
  if (spoken || !voices.length) return;
  spoken = true;
  report('voices ' + voices.map(v => v.name + '|' + v.lang).join(' '));
  const u = new SpeechSynthesisUtterance(SPOKEN);
  u.onstart = () => report('start');
  u.onend = () => report('end');
  u.onerror = e => report('error ' + e.error);
  speechSynthesis.speak(u);
}
speechSynthesis.onvoiceschanged = speak;
speak();
</script></body></html>
""".replace("SPOKEN", json.dumps(TEXT))
PREFS = """\
user_pref("media.webspeech.synth.enabled", true);
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("toolkit.telemetry.reportingpolicy.firstRun", false);
user_pref("app.update.enabled", false);
user_pref("browser.startup.homepage_override.mstone", "ignore");
user_pref("network.captive-portal-service.enabled", false);
user_pref("network.connectivity-service.enabled", false);
user_pref("extensions.update.enabled", false);
user_pref("browser.safebrowsing.update.enabled", false);
"""

pytestmark = pytest.mark.skipif(
    FIREFOX is None, reason="firefox-esr is not installed (scripts/setup --test)"
)


class PageServer:
    """Serves the page on a local port and keeps what it reports (`/log?...`)."""

    def __init__(self) -> None:
        self.reports: list[str] = []
        self._changed = threading.Condition()
        reports, changed = self.reports, self._changed

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                if url.path == "/log":
                    with changed:
                        reports.append(urllib.parse.unquote(url.query))
                        changed.notify_all()
                    self.send_response(204)
                    self.end_headers()
                    return
                body = PAGE.encode()
                self.send_response(200 if url.path == "/page.html" else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/page.html"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def wait_for(self, prefix: str, timeout: float) -> str:
        """The first report starting with ``prefix``; TimeoutError after ``timeout`` s."""
        with self._changed:
            if not self._changed.wait_for(
                lambda: any(r.startswith(prefix) for r in self.reports), timeout
            ):
                raise TimeoutError(f"no {prefix!r} from the page; it reported {self.reports}")
            return next(r for r in self.reports if r.startswith(prefix))

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5.0)


@contextlib.contextmanager
def firefox(url: str, profile: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """Headless Firefox on ``url`` in a new profile, ended with everything it started."""
    profile.mkdir()
    (profile / "user.js").write_text(PREFS)
    assert FIREFOX is not None
    proc = subprocess.Popen(
        [FIREFOX, "--headless", "--no-remote", "--profile", str(profile), url],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10.0)


@pytest.mark.timeout(BROWSER_TIMEOUT + 60)
async def test_a_page_s_speech_synthesis_speaks_through_the_daemon(
    tone_server: ToneServer, daemons: Daemons, tmp_path: Path, recorder: Recorder
) -> None:
    socket = tmp_path / "speechd.sock"
    await daemons.start(tone_server.address, KEY, ssip={"socket": str(socket)})
    page = PageServer()
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **os.environ,
        "HOME": str(home),
        "SPEECHD_ADDRESS": f"unix_socket:{socket}",
        "MOZ_HEADLESS": "1",
    }
    start = recorder.sample_count()
    try:
        with firefox(page.url, tmp_path / "profile", env):
            voices = await asyncio.to_thread(page.wait_for, "voices ", BROWSER_TIMEOUT)
            assert "marina|ru-RU" in voices.split(), voices
            assert "john|en-US" in voices.split(), voices
            await asyncio.to_thread(page.wait_for, "start", BROWSER_TIMEOUT)
            await asyncio.to_thread(page.wait_for, "end", BROWSER_TIMEOUT)
            assert not [r for r in page.reports if r.startswith("error")], page.reports
    finally:
        page.close()
    await record_until(recorder, heard_and_quiet(len(TEXT) * 0.04 - 0.1, 0.2, since=start))
    (call,) = await tone_server.wait_calls(1, 5.0)
    assert "".join(call.texts).strip() == TEXT
