"""Layer `cache`: the phrase cache, finished utterances' audio kept on disk and played
again from there, with no call to the service and no network.

Owns: `key` (what a cached sound is told apart by), `entry` (one phrase's file: audio,
its text marks, a length and a checksum), `store` (the folder: atomic writes, the least
recently played evicted, corrupt entries dropped), `caching` (a `Synthesis` that records
whole utterances, plays cached ones, and records phrases ahead, unplayed, for `cache warm`).
May import: `player.synthesis` (its interface), `player.audio.ring` (the frame type),
`player.config`, `player.errors`.
"""
