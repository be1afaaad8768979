"""Layer `local`: our SpeechKit v3-compatible server, backed by Piper.

Owns: `service` (what every SpeechKit-compatible server of ours shares: the service's
checks, the request stream's rules, auth and statuses; the tests' tone server uses it
too), `server` (calls and their sentence queues), `voicing` (synthesis on worker
threads, loudness, resampling, chunks), `engine` (loading Piper and its voices).
May import: `player.speech.sentences`, `player.config`, `player.errors`,
`player.limits`, `player.generated`. Piper is imported only when a voice is loaded.
"""
