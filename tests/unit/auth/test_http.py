"""player.auth.http: what a token service says back never carries what was sent."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from player.auth.http import HttpFailure, request_json

SECRET = "eyJhbGciOiJQUzI1NiJ9." + "s" * 300


class _Echo(BaseHTTPRequestHandler):
    """Refuses every request, quoting it after a long preamble, as a verbose server may."""

    def do_POST(self) -> None:
        sent = self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({"message": "x" * 150 + " " + json.loads(sent)["jwt"]}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def echo_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/iam/v1/tokens"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


async def test_a_secret_echoed_past_the_cut_leaves_no_part_of_itself(echo_url: str) -> None:
    with pytest.raises(HttpFailure) as refused:
        await request_json(echo_url, body={"jwt": SECRET}, hide=(SECRET,), timeout=5.0)

    assert refused.value.status == 401
    assert "<secret>" in str(refused.value)
    assert SECRET[:20] not in str(refused.value)
