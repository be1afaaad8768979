"""Layer `control`: the daemon's gRPC control API on a local Unix socket.

Owns: `server` (the service and the socket it listens on), `client` (`player.Client`,
asyncio) and `sync_client` (`player.SyncClient`).
May import: `player.speech`, `player.audio`, `player.synthesis` (the server side),
`player.config`, `player.errors`, `player.generated`. The clients import none of the
daemon's layers, so a client never loads numpy or PortAudio.
"""
