"""Layer `metrics`: the daemon's state as Prometheus series, served over HTTP.

Owns: `series` (what one scrape reads from the daemon, and the series built from it),
`collector` (taking that reading on the event loop for the HTTP server's thread),
`reachability` (whether the endpoint answered, from the gRPC channel's state), `server`
(the private registry, the first-audio histogram fed from the event bus, the listener).
May import: `player.speech`, `player.audio`, `player.config`, `player.errors`,
`player.__version__` (the build info). Only `player.daemon` imports it.
"""
