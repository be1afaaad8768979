"""The credentials in use now, renewed in the background, replaceable by a reload."""

from __future__ import annotations

import asyncio

from player.auth.credentials import Credentials


class CurrentCredentials:
    """Runs the renewal of whichever credentials are current; `replace` ends the old
    one's and starts the new one's. Only the event loop calls it."""

    def __init__(self, credentials: Credentials | None) -> None:
        self._credentials = credentials
        self._replaced = asyncio.Event()

    @property
    def credentials(self) -> Credentials | None:
        return self._credentials

    def replace(self, credentials: Credentials | None) -> None:
        self._credentials = credentials
        self._replaced.set()

    def expires_at(self) -> float | None:
        return self._credentials.expires_at() if self._credentials is not None else None

    async def run(self) -> None:
        """Until cancelled."""
        while True:
            self._replaced.clear()
            credentials = self._credentials
            async with asyncio.TaskGroup() as group:
                renewal = group.create_task(credentials.run()) if credentials else None
                await self._replaced.wait()
                if renewal is not None:
                    renewal.cancel()
