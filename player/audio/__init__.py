"""Layer `audio`: everything between PCM frames and the sound card.

Owns: `ring` (the preallocated single-producer/single-consumer buffer), `drain` (what the
callback does with it), `stream` (the PortAudio stream's lifetime and its callback),
`output` (the producer's side: gate, write with backpressure, cuts, pause), `devices`,
`telemetry` (rows the callback and producer write for `status`), `chimes`, `media_role`
(what the stream tells the sound server it is for).
May import: `player.config`, `player.errors`, `player.limits`. Nothing here knows about
utterances, text or synthesis.
"""
