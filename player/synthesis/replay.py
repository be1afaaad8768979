"""Text pieces from a one-shot source, kept so that later calls can read them again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from player.synthesis.interface import Piece


class Replay:
    """Reads a one-shot source (`pump`) and lets any number of readers go through its
    pieces from any point, while the source is still being read."""

    def __init__(self, source: AsyncIterator[Piece]) -> None:
        self._source = source
        self._pieces: list[Piece] = []
        self._done = False
        self._error: Exception | None = None
        self._changed = asyncio.Condition()

    @property
    def pieces(self) -> list[Piece]:
        """The pieces read so far, in order; readers' indices point into it."""
        return self._pieces

    async def pump(self) -> None:
        try:
            async for piece in self._source:
                async with self._changed:
                    self._pieces.append(piece)
                    self._changed.notify_all()
        except Exception as exc:
            # Readers re-raise it: they must not wait for text that will never come.
            self._error = exc
        async with self._changed:
            self._done = True
            self._changed.notify_all()

    async def reader(self, start: int = 0) -> AsyncIterator[Piece]:
        """The pieces from index ``start`` on, to the end of the source."""
        index = start
        while True:
            async with self._changed:
                while index >= len(self._pieces) and not self._done:
                    await self._changed.wait()
                fresh = self._pieces[index:]
                done = self._done
            for piece in fresh:
                yield piece
            index += len(fresh)
            if done and index >= len(self._pieces):
                if self._error is not None:
                    raise self._error
                return
