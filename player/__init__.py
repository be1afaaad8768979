"""speechkit-player: speak text on the local sound card through SpeechKit v3 streaming synthesis.

`player.Client` (asyncio) and `player.SyncClient` talk to a running daemon; see README.
Every error raised on purpose is a `player.PlayerError` (see `player.errors`).

The layers, each a subpackage whose `__init__` says what it owns and may import:
`config` -> `auth` -> `audio` -> `synthesis` -> `speech` -> `control`; `local` is the
Piper server.
Data flows one way: text -> synthesis call -> ring -> audio callback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from player.errors import ClientError, PlayerError

__version__ = "0.1.0"

__all__ = ["Client", "ClientError", "PlayerError", "SyncClient", "__version__"]

if TYPE_CHECKING:
    from player.control.client import Client
    from player.control.sync_client import SyncClient


def __getattr__(name: str) -> Any:
    # Imported on first use: the daemon and the CLI import submodules of this package
    # and need none of the client's grpc stubs for that.
    if name == "Client":
        from player.control.client import Client

        return Client
    if name == "SyncClient":
        from player.control.sync_client import SyncClient

        return SyncClient
    raise AttributeError(f"module 'player' has no attribute {name!r}")
