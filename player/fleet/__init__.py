"""The kiosk in a fleet: announcements from an MQTT broker spoken here, and this kiosk's
availability, state and events published to it.

Owns: `topics` (every topic name, from the settings), `announcement` (a `say` payload
parsed, and the ids already spoken), `link` (the connection, kept up forever),
`publisher` (state and events as the broker sees them), `homeassistant` (MQTT discovery),
`fleet` (all of it run beside playback).
May import: `player.control.server`, `player.control.views`, `player.speech`,
`player.config`, `player.errors`, `player.generated`, `player.__version__`. Only the
daemon imports this layer, and only when `[mqtt] broker` is set.
"""
