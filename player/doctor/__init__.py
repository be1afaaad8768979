"""Layer `doctor`: `speechkit-player doctor`, every check a silent kiosk needs, in order.

Owns: `checks` (the `Check` result, what earlier checks found for later ones, bounded
waits), `sound` (sound server, audio device, a test tone through the product's own
output), `cloud` (credentials, DNS, TCP/TLS, a one-word synthesis), `local` (loading the
local voice, in a child process), `daemon_check` (the daemon answering on its socket),
`run` (the checks in order, each failure one line, later checks skipped with the reason).
May import: `player.config`, `player.errors`, `player.limits`, `player.audio`,
`player.auth`, `player.synthesis`, `player.local.engine`, `player.control.client`,
`player.generated`. Only the CLI imports this layer.
"""
