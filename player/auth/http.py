"""JSON over HTTP for the token services: one request, bounded, off the event loop.

The token services answer a handful of requests an hour, so the standard library's
urllib on a thread of its own is enough; it never blocks the loop that plays audio, and
a request still hanging when the daemon stops does not delay its exit.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping

from player import __version__
from player.threads import in_thread

USER_AGENT = f"speechkit-player/{__version__}"
TIMEOUT_S = 10.0
"""Seconds one request may take, connecting included."""
_MESSAGE_CHARS = 200
"""A server's error message is cut to this many characters: one line, not a page."""


class HttpFailure(Exception):
    """The server answered with an error status; `message` is what it said, on one line."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}" + (f": {message}" if message else ""))
        self.status = status
        self.message = message


class Unreachable(Exception):
    """No answer: the name does not resolve, the connection fails or times out, or the
    answer is not the JSON object asked for."""


async def request_json(
    url: str,
    *,
    body: Mapping[str, object] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = TIMEOUT_S,  # noqa: ASYNC109 - urllib takes the bound itself
    hide: tuple[str, ...] = (),
) -> dict[str, object]:
    """POST `body` as JSON (GET when None); the answer's JSON object. Raises HttpFailure
    or Unreachable; an error message the server sends has each string in `hide` (what
    was sent and is secret) replaced, before it is cut to length."""
    sent = dict(headers or {})
    # The slack lets urllib's own bound, which names what timed out, come first; DNS,
    # which urllib does not bound, is cut off here.
    try:
        return await in_thread(
            lambda: _request(url, body, sent, timeout, hide), 2 * timeout, "token"
        )
    except TimeoutError:
        raise Unreachable("timed out") from None


def _request(
    url: str,
    body: Mapping[str, object] | None,
    headers: dict[str, str],
    timeout: float,
    hide: tuple[str, ...],
) -> dict[str, object]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if body is None else "POST")
    request.add_header("User-Agent", USER_AGENT)
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    for name, value in headers.items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
    except urllib.error.HTTPError as err:
        raise HttpFailure(err.code, _message(err, hide)) from None
    except urllib.error.URLError as err:
        reason = err.reason if isinstance(err.reason, str) else _os_reason(err.reason)
        raise Unreachable(reason) from None
    except (OSError, ValueError) as err:  # timeouts, resets, a malformed URL
        raise Unreachable(_os_reason(err)) from None
    try:
        answer = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise Unreachable("the answer is not JSON") from None
    if not isinstance(answer, dict):
        raise Unreachable("the answer is not a JSON object")
    return answer


def _os_reason(err: BaseException) -> str:
    if isinstance(err, TimeoutError):
        return "timed out"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return type(err).__name__


def _message(err: urllib.error.HTTPError, hide: tuple[str, ...]) -> str:
    """The `message` of a JSON error body (as Yandex Cloud sends), else the reason phrase."""
    try:
        body = json.loads(err.read() or b"null")
    except (ValueError, OSError, UnicodeDecodeError):
        body = None
    message = body.get("message") if isinstance(body, dict) else None
    text = message if isinstance(message, str) and message.strip() else str(err.reason or "")
    text = " ".join(text.split())
    for secret in hide:
        text = text.replace(secret, "<secret>")
    return text[:_MESSAGE_CHARS] + ("..." if len(text) > _MESSAGE_CHARS else "")
