"""Layer `audio`: everything between PCM frames and the sound card.

Owns: `ring` (the preallocated single-producer/single-consumer buffer), `drain` (what the
callback does with it), `stream` (the PortAudio stream's lifetime and its callback),
`opening` (starting a stream, and setting aside one whose start timed out), `recovery`
(when a stream counts as lost; the device's state and the wait for it), `upkeep` (the
loops that reopen a lost device, move the latency and close an idle stream), `latency`
(the output latency's policy),
`output` (the producer's side: gate, write with backpressure, cuts, pause), `devices`,
`telemetry` (rows the callback and producer write for `status`), `chimes`, `media_role`
(what the stream tells the sound server it is for).
May import: `player.config`, `player.errors`, `player.limits`. Nothing here knows about
utterances, text or synthesis.
"""
