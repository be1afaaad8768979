"""An IAM token kept fresh by someone else in a file (`iam_token_file`), read again
whenever the file changes."""

from __future__ import annotations

import collections
import logging
import os
from pathlib import Path

from player.auth.credentials import Credentials
from player.config.credentials import Secret

_LOGGER = logging.getLogger(__name__)

_Stamp = tuple[int, int, int, int]
"""(device, inode, size, mtime in ns): a file replaced or rewritten changes one of them."""


def _stamp(path: Path) -> _Stamp | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


class TokenFileCredentials(Credentials):
    """The token in `path`: looked at before each call (a stat), read when it changed.

    A file that cannot be read, or is empty for a moment while it is rewritten, leaves
    the token read last in use; the problem is logged once.
    """

    kind = "iam_token"

    def __init__(self, path: Path, token: Secret) -> None:
        self._path = path
        self._token = token.reveal()
        self._stamp = _stamp(path)
        self._recent: collections.deque[str] = collections.deque([self._token], maxlen=4)
        self._complained = False

    async def authorization(self) -> str:
        self._refresh()
        return f"Bearer {self._token}"

    def rejected(self, authorization: str) -> bool:
        self._refresh()
        return authorization != f"Bearer {self._token}"

    def scrub(self, text: str) -> str:
        for value in self._recent:
            text = text.replace(value, "<secret>")
        return text

    def _refresh(self) -> None:
        stamp = _stamp(self._path)
        if stamp is None or stamp == self._stamp:
            self._complain(stamp is None, "cannot be read")
            return
        try:
            text = self._path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            text = ""
        if not text:
            self._complain(True, "is empty or unreadable")
            return  # looked at again on the next call: it may be half written
        self._stamp = stamp
        self._complained = False
        if text != self._token:
            self._token = text
            self._recent.append(text)
            _LOGGER.info("read a new IAM token from %s", self._path)

    def _complain(self, failing: bool, problem: str) -> None:
        if failing and not self._complained:
            _LOGGER.warning(
                "the IAM token file %s %s; the token read last stays in use", self._path, problem
            )
        self._complained = failing or self._complained
