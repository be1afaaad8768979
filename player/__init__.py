"""speechkit-player: speak text on the local sound card through SpeechKit v3 streaming synthesis.

`player.Client` (asyncio) and `player.SyncClient` talk to a running daemon; see README.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Client", "ClientError", "SyncClient"]

if TYPE_CHECKING:
    from player.client import Client, ClientError
    from player.sync_client import SyncClient


def __getattr__(name: str) -> Any:
    # Imported on first use: the daemon and the CLI import submodules of this package
    # and need none of the client's grpc stubs for that.
    if name in ("Client", "ClientError"):
        from player import client

        return getattr(client, name)
    if name == "SyncClient":
        from player.sync_client import SyncClient

        return SyncClient
    raise AttributeError(f"module 'player' has no attribute {name!r}")
