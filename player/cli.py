"""The command line: `daemon`, and the client commands that talk to it.

Client commands import neither numpy nor sounddevice, so `say` starts quickly.
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import json
import logging
import os
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from player.config import Settings, default_config, load_settings
from player.errors import ConfigError, InputError, PlayerError

if TYPE_CHECKING:
    from player.control.client import Client

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
"""128 + SIGINT, as shells report a command ended by Ctrl-C."""
# player.speech.priority.Priority's values, spelled out so `say` need not import the daemon's side.
PRIORITIES = ("important", "message", "text", "notification", "progress")
PROG = "speechkit-player"


class _Parser(argparse.ArgumentParser):
    """argparse with its errors as one line: a usage dump on every typo buries the reason."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{PROG}: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Speak text on the local sound card through SpeechKit streaming synthesis.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    # Every subcommand takes these too, so `-v` works after the command as well as before.
    # SUPPRESS: a subcommand that was not given `-v` must not reset the global one to False.
    common = _Parser(add_help=False)
    common.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging"
    )
    common.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        help="TOML config (default: ~/.config/speechkit-player/player.toml if present)",
    )
    # An action's own options: set after the command ("cache --config X warm") they must
    # not be reset by the action's defaults.
    nested = _Parser(add_help=False)
    nested.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging"
    )
    nested.add_argument(
        "--config", type=Path, metavar="PATH", default=argparse.SUPPRESS, help="TOML config"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        sub: argparse.ArgumentParser = commands.add_parser(
            name, help=help_text, description=help_text, parents=[common]
        )
        return sub

    command("daemon", "run the daemon in the foreground until SIGTERM")
    serve = command(
        "serve-local",
        "run a SpeechKit v3-compatible synthesis server backed by Piper until SIGTERM",
    )
    serve.add_argument(
        "--listen", metavar="ADDR", help='"host:port" or "unix:PATH" (default: [local] listen)'
    )
    # The daemon's child: stop when the parent goes away and closes our stdin.
    serve.add_argument("--exit-with-stdin", action="store_true", help=argparse.SUPPRESS)
    say = command("say", "queue text to speak ('-' reads standard input as it arrives)")
    say.add_argument("--wait", action="store_true", help="return after the last sample played")
    say.add_argument(
        "--priority",
        choices=PRIORITIES,
        default="message",
        help="speech-dispatcher's meaning (default: message); see README",
    )
    say.add_argument("text", nargs="+", metavar="TEXT")
    command("stop", "silence the speaker now and clear the queue")
    cancel = command("cancel", "drop one utterance, queued or playing")
    cancel.add_argument("id", metavar="ID", help="the id `say` printed")
    command("pause", "go quiet, keeping the position (new utterances still queue)")
    command("resume", "go on from where `pause` stopped")
    command("status", "print the daemon's state as JSON")
    command("devices", "list output devices as the daemon sees them")
    command("events", "print what happens to utterances as JSON lines, until interrupted")
    cache = command("cache", "the daemon's phrase cache: warm, list or clear it")
    cache_commands = cache.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    warm = cache_commands.add_parser(
        "warm",
        parents=[nested],
        help="synthesise each line of FILE into the cache, unplayed ('-': standard input)",
    )
    warm.add_argument("file", metavar="FILE")
    listed = cache_commands.add_parser("list", parents=[nested], help="what the cache holds")
    listed.add_argument("--json", action="store_true", help="one JSON object per line")
    cache_commands.add_parser("clear", parents=[nested], help="remove every cached phrase")
    doctor = command(
        "doctor", "check everything speaking needs, one line each; exit 0 only if all pass"
    )
    doctor.add_argument("--json", action="store_true", help="one JSON object per line")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    # The one place a PlayerError becomes what the person sees: one line, no traceback.
    try:
        code = _run(args)
        # Here rather than at exit, so that a reader gone away is handled below.
        sys.stdout.flush()
    except ConfigError as err:
        _fail(str(err), EXIT_USAGE)
    except PlayerError as err:
        _fail(str(err))
    except KeyboardInterrupt:
        # Ctrl-C is how `events` (or a long `say --wait`) is meant to end.
        code = EXIT_INTERRUPTED
    except BrokenPipeError:
        # Whoever read our output went away (`events | head -1`): nobody is left to tell.
        # Point stdout at /dev/null so that the flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = EXIT_FAILED
    sys.exit(code)


def _run(args: argparse.Namespace) -> int:
    if args.command == "doctor":
        # Before the config is loaded: an invalid one is the doctor's first finding.
        return asyncio.run(_doctor(args))
    settings = load_settings(args.config or default_config(os.environ), os.environ)
    if args.command == "daemon":
        _run_daemon(settings, args.verbose)
        return 0
    if args.command == "serve-local":
        _serve_local(settings, args.listen, args.exit_with_stdin, args.verbose)
        return 0
    return asyncio.run(_client(settings, args))


async def _doctor(args: argparse.Namespace) -> int:
    from player.doctor.run import passed, run_checks

    if args.verbose:
        _log_to_stderr(True)
    done = []
    async for check in run_checks(args.config or default_config(os.environ), os.environ):
        done.append(check)
        print(json.dumps(check.as_dict()) if args.json else check.line(), flush=True)
    return 0 if passed(done) else EXIT_FAILED


def _fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    print(f"{PROG}: {message}", file=sys.stderr)
    sys.exit(code)


def _log_to_stderr(verbose: bool) -> None:
    # journald stamps each line itself.
    stamp = "" if os.environ.get("JOURNAL_STREAM") else "%(asctime)s "
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        stream=sys.stderr,
        format=f"{stamp}%(levelname)s %(name)s: %(message)s",
    )


def _serve_local(
    settings: Settings, listen: str | None, exit_with_stdin: bool, verbose: bool
) -> None:
    _log_to_stderr(verbose)
    from player.errors import LocalError
    from player.local.engine import check_installed

    check_installed(settings.local)
    from player.local.server import serve

    address = listen or settings.local.listen
    try:
        asyncio.run(serve(settings.local, address, exit_with_stdin))
    except RuntimeError as err:  # grpc cannot bind the address
        raise LocalError(f"cannot serve on {address}: {err}") from None


def _run_daemon(settings: Settings, verbose: bool) -> None:
    _log_to_stderr(verbose)
    from player.daemon import run

    asyncio.run(run(settings))


Command = Callable[["Client", argparse.Namespace], Awaitable[int]]


async def _client(settings: Settings, args: argparse.Namespace) -> int:
    from player.control.client import Client

    commands: dict[str, Command] = {
        "say": _say,
        "stop": _stop,
        "cancel": _cancel,
        "pause": _pause,
        "resume": _resume,
        "status": _status,
        "events": _events,
        "devices": _devices,
        "cache": _cache,
    }
    async with Client(settings.control.socket) as client:
        return await commands[args.command](client, args)


async def _stop(client: Client, args: argparse.Namespace) -> int:
    reply = await client.stop()
    print(f"stopped ({reply.cancelled} utterance(s) cancelled)")
    return 0


async def _cancel(client: Client, args: argparse.Namespace) -> int:
    from player.errors import ClientError

    if not await client.cancel(args.id):
        raise ClientError(f"{args.id} is not queued or playing")
    print(f"{args.id}: cancelled")
    return 0


async def _pause(client: Client, args: argparse.Namespace) -> int:
    await client.pause()
    print("paused")
    return 0


async def _resume(client: Client, args: argparse.Namespace) -> int:
    await client.resume()
    print("resumed")
    return 0


async def _status(client: Client, args: argparse.Namespace) -> int:
    from player.control.views import status_dict

    print(json.dumps(status_dict(await client.status()), indent=2))
    return 0


async def _events(client: Client, args: argparse.Namespace) -> int:
    from player.control.views import event_dict

    async for event in await client.subscribe():
        print(json.dumps(event_dict(event)), flush=True)
    return 0


async def _cache(client: Client, args: argparse.Namespace) -> int:
    from player.cli_cache import run

    return await run(client, args)


async def _devices(client: Client, args: argparse.Namespace) -> int:
    for device in (await client.devices()).devices:
        mark = "*" if device.is_default else " "
        print(
            f"{mark}{device.index:3d} {device.name} ({device.hostapi}, "
            f"{device.max_output_channels} ch, {device.default_samplerate:.0f} Hz)"
        )
    return 0


async def _say(client: Client, args: argparse.Namespace) -> int:
    words: list[str] = args.text
    if words == ["-"]:
        text: str | AsyncIterator[str] = _stdin_pieces()
    else:
        text = " ".join(words)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise InputError("the text is not valid UTF-8") from None
    reply = await client.say(text, wait=args.wait, priority=args.priority)
    if args.wait:
        print(f"{reply.utterance_id}: played {reply.played_ms / 1000:.2f} s")
    else:
        print(reply.utterance_id)
    return 0


async def _stdin_pieces() -> AsyncIterator[str]:
    """Standard input, piece by piece as it arrives (not line-buffered)."""
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[bytes] = asyncio.Queue()

    def pump() -> None:
        while True:
            try:
                data = os.read(sys.stdin.fileno(), 4096)
            except OSError:
                data = b""
            loop.call_soon_threadsafe(chunks.put_nowait, data)
            if not data:
                return

    # A daemon thread, not the executor: if the daemon fails the utterance while the
    # producer is still writing, exiting must not wait for a read that may never end.
    threading.Thread(target=pump, name="stdin", daemon=True).start()
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    while True:
        data = await chunks.get()
        try:
            text = decoder.decode(data, final=not data)
        except UnicodeDecodeError as err:
            raise InputError(
                f"standard input is not valid UTF-8 (byte {offset + err.start})"
            ) from None
        offset += len(data)
        if text:
            yield text
        if not data:
            return
