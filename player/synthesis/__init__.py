"""Layer `synthesis`: text pieces in, PCM out.

Owns: `interface` (pieces, sinks, results: what every way of synthesising shares),
`speechkit` (`SpeechKitClient`: opens SpeechKit v3 StreamSynthesis calls; `stream_call`
runs one, bounding the server's silences; `pcm` decodes LINEAR16), `long_text` (a text
over one call's limit as consecutive calls),
`local_process` (the daemon's own local synthesizer as a supervised child process),
`fallback` (the cloud first, the local synthesizer when it cannot be reached),
`resume` (a call broken off by a transient error resumed by a new one from the sentence
it cut), `replay` (a one-shot source of pieces read again by later calls).
May import: `player.audio.ring` (the frame type), `player.auth` (the credentials a call
carries), `player.config`, `player.errors`,
`player.limits`, `player.generated`.
"""
