"""`speechkit-player cache warm|list|clear`: the daemon's phrase cache from the shell."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from player.errors import InputError

if TYPE_CHECKING:
    from player.control.client import Client

EXIT_FAILED = 1


async def run(client: Client, args: argparse.Namespace) -> int:
    if args.cache_command == "warm":
        return await _warm(client, _phrases(args.file))
    if args.cache_command == "list":
        return await _list(client, args.json)
    reply = await client.clear_cache()
    print(f"cleared: {reply.removed} phrase(s), {_size(reply.freed_bytes)}")
    return 0


def _phrases(name: str) -> list[str]:
    """The file's lines that say something; `#` starts a comment line."""
    try:
        if name == "-":
            text = sys.stdin.buffer.read().decode("utf-8")
        else:
            text = Path(name).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read {name}: {exc.strerror or type(exc).__name__}") from None
    except UnicodeDecodeError:
        raise InputError(f"{name} is not UTF-8 text") from None
    lines = [line.strip() for line in text.splitlines()]
    phrases = [line for line in lines if line and not line.startswith("#")]
    if not phrases:
        raise InputError(f"{name} has no phrases (one per line; # starts a comment)")
    return phrases


async def _warm(client: Client, phrases: list[str]) -> int:
    failed = 0
    async for reply in client.warm_cache(phrases):
        if reply.outcome == "failed":
            failed += 1
            print(f"failed: {reply.text!r}: {reply.error}", flush=True)
        else:
            seconds = reply.duration_ms / 1000
            print(f"{reply.outcome}: {reply.text!r} ({seconds:.1f} s, {reply.engine})", flush=True)
    print(f"{len(phrases) - failed} of {len(phrases)} phrase(s) in the cache")
    return EXIT_FAILED if failed else 0


async def _list(client: Client, as_json: bool) -> int:
    entries = (await client.list_cache()).entries
    for entry in entries:
        if as_json:
            fields = {
                "text": entry.text,
                "voice": entry.voice,
                "engine": entry.engine,
                "duration_ms": entry.duration_ms,
                "size_bytes": entry.size_bytes,
                "last_played": round(entry.last_played, 3),
            }
            print(json.dumps(fields, ensure_ascii=False))
        else:
            played = time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.last_played))
            print(
                f"{played}  {entry.duration_ms / 1000:5.1f} s  {_size(entry.size_bytes):>8}  "
                f"{entry.voice} ({entry.engine})  {entry.text}"
            )
    if not as_json:
        print(f"{len(entries)} phrase(s)")
    return 0


def _size(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB" if size >= 100_000 else f"{size / 1000:.0f} kB"
