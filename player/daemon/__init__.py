"""The daemon: where the layers are put together and run.

Owns: `serving` (start-up, the tasks that run until SIGTERM, shutting down, and what
systemd is told), `backend` (the synthesis stack built from the settings), `reconfigure`
(a reloaded config applied to the running parts).
May import any layer: nothing imports it but the CLI.
"""

from player.daemon.serving import WEDGED_S, run

__all__ = ["WEDGED_S", "run"]
