"""Layer `synthesis`: text pieces in, PCM out.

Owns: `interface` (pieces, sinks, results: what every way of synthesising shares),
`speechkit` (one SpeechKit v3 StreamSynthesis call, with `pcm`, its LINEAR16 decoder),
`local_process` (the daemon's own local synthesizer as a supervised child process),
`fallback` (the cloud first, the local synthesizer when it cannot be reached).
May import: `player.audio.ring` (the frame type), `player.config`, `player.errors`,
`player.limits`, `player.generated`.
"""
