"""Whether the SpeechKit endpoint answered: followed from the gRPC channel's
connectivity state as it changes, without making a connection of its own.

READY means it answered; TRANSIENT_FAILURE (or SHUTDOWN) that the last attempt failed.
IDLE and CONNECTING say nothing new: a channel goes idle after a while without calls, and
connects again only when the next call needs it, so the last verdict stands until then.
Before the first call there is none.
"""

from __future__ import annotations

import grpc

_VERDICTS = {
    grpc.ChannelConnectivity.READY: True,
    grpc.ChannelConnectivity.TRANSIENT_FAILURE: False,
    grpc.ChannelConnectivity.SHUTDOWN: False,
}


class Reachability:
    """Only the event loop uses it."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._channel = channel
        self.reachable: bool | None = None
        """The last verdict; None before the channel first connected or failed to."""

    async def run(self) -> None:
        """Follow the channel until cancelled."""
        state = self._channel.get_state()
        while True:
            self.reachable = _VERDICTS.get(state, self.reachable)
            await self._channel.wait_for_state_change(state)
            state = self._channel.get_state()
