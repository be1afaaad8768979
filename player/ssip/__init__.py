"""Layer `ssip`: speech-dispatcher's protocol, SSIP, so that the programs that speak on
Linux (`spd-say`, Python's `speechd`, libspeechd in Orca and in browsers for a page's
`speechSynthesis`) speak through the daemon.

Owns: `replies` (speech-dispatcher's reply and event lines), `choices` (what a client
chose with SET), `voices` (the voices offered, CHAR and KEY names, SSML's words),
`clients` (client ids, their messages, and the daemon's events as theirs), `connection`
(one client's commands), `server` (the sockets).
May import: `player.speech` (the `Speaker` every front shares, its events),
`player.audio.ring` (the frames of a sound icon), `player.config`, `player.errors`,
`player.limits`. Only the daemon imports this layer.
"""

from player.ssip.server import SsipServer

__all__ = ["SsipServer"]
