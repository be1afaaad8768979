"""Speak an LLM's answer while it is still being written; if the user barges in
(`speechkit-player stop`), report what they heard so the assistant can cut its history.

Start the daemon (`speechkit-player daemon`), then run this with the project's Python.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import player

ANSWER = (
    "Sure. The museum opens at nine in the morning and closes at six in the evening. "
    "On Thursdays it stays open until nine at night, and entry is free after five. "
    "The modern art wing is on the second floor, next to the cafe, and the guided tour "
    "of the old masters starts every hour from the main hall. Tickets can be bought at "
    "the door or online, and children under twelve go in for free. Is there anything "
    "else you would like to know about your visit?"
)


async def llm_tokens(prompt: str) -> AsyncIterator[str]:
    """Stands in for a model's streaming API: a canned answer, in tokens of up to four
    characters, about 30 a second. Put your model's stream here."""
    for token in re.findall(r"\s*\S{1,4}", ANSWER):
        await asyncio.sleep(0.03)
        yield token


def report(event: Any, sent: int) -> list[str]:
    """What to print for an event about our utterance (a `player.Client` event)."""
    if event.kind == "started":
        return [f"first audio after {event.first_audio_ms} ms, {sent} tokens sent"]
    if event.kind == "finished":
        return [f"finished: {event.played_ms} ms played"]
    if event.kind == "cancelled":
        return [f"cancelled ({event.reason}) after {event.played_ms} ms", f"heard: {event.text!r}"]
    if event.kind == "error":
        return [f"error: {event.error}"]
    return []


async def speak(prompt: str, socket: str | None) -> None:
    begin = time.monotonic()
    sent = 0

    def log(line: str) -> None:
        print(f"[{time.monotonic() - begin:5.2f} s] {line}", flush=True)

    async with player.Client(socket) as client:
        # Listen before speaking, so no event is missed.
        events = await client.subscribe()
        speech = client.speech(priority="message")

        async def watch() -> None:
            utterance_id = await speech.id()
            async for event in events:
                if event.utterance_id != utterance_id:
                    continue
                for line in report(event, sent):
                    log(line)
                if event.kind in ("finished", "cancelled", "error"):
                    return

        async with asyncio.TaskGroup() as group:
            group.create_task(watch())
            try:
                async with speech:
                    async for token in llm_tokens(prompt):
                        await speech.feed(token)
                        sent += 1
                log(f"last token sent ({sent} tokens)")
            except player.ClientError as err:
                # A barge-in: the model's stream can be stopped here too.
                log(f"speech ended early: {err}")
        events.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--socket", help="the daemon's control socket (default: from the config)")
    parser.add_argument("prompt", nargs="?", default="When is the museum open?")
    args = parser.parse_args()
    asyncio.run(speak(args.prompt, args.socket))


if __name__ == "__main__":
    main()
