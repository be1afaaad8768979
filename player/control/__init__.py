"""Layer `control`: the daemon's gRPC control API on a local Unix socket.

Owns: `server` (the service), `cache_rpc` (the phrase cache's calls), `views` (status and
events as JSON objects), `unix_socket` (claiming the socket path, serving on it,
removing only our own), `client` (`player.Client`, asyncio) and `sync_client`
(`player.SyncClient`).
May import: `player.speech`, `player.audio`, `player.synthesis`, `player.cache` (the
server side),
`player.config`, `player.errors`, `player.generated`. The clients import none of the
daemon's layers, so a client never loads numpy or PortAudio.
"""
