"""player.auth.token_file: a token file rewritten by someone else is read again."""

from __future__ import annotations

import os
from pathlib import Path

from player.auth.token_file import TokenFileCredentials
from player.config.credentials import Secret


def replace(path: Path, text: str) -> None:
    """As a token refresher does: a new file renamed over the old one."""
    new = path.with_suffix(".new")
    new.write_text(text, encoding="utf-8")
    os.replace(new, path)


async def test_a_rewritten_token_file_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("t1.first\n", encoding="utf-8")
    creds = TokenFileCredentials(path, Secret("t1.first"))
    assert await creds.authorization() == "Bearer t1.first"

    replace(path, "t1.second\n")

    assert creds.rejected("Bearer t1.first")
    assert await creds.authorization() == "Bearer t1.second"
    assert not creds.rejected("Bearer t1.second")
    assert creds.scrub("t1.first t1.second") == "<secret> <secret>"


async def test_an_empty_or_missing_file_keeps_the_token_read_last(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("t1.first", encoding="utf-8")
    creds = TokenFileCredentials(path, Secret("t1.first"))

    replace(path, "")
    assert await creds.authorization() == "Bearer t1.first"
    path.unlink()
    assert await creds.authorization() == "Bearer t1.first"
    path.write_text("t1.back", encoding="utf-8")
    assert await creds.authorization() == "Bearer t1.back"
