"""A check's result, what earlier checks found for later ones, and bounded waits."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TypeVar

from player.config import Settings

if TYPE_CHECKING:
    from player.audio.devices import DeviceInfo
    from player.auth import Credentials

Verdict = Literal["ok", "problem", "skipped"]
_T = TypeVar("_T")

NAME_WIDTH = 13
"""Columns the check's name takes in a line: the longest name, plus room."""


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str
    """What was checked ("sound server", "tls", ...)."""
    verdict: Verdict
    """ok; problem (something the kiosk needs is broken); skipped (not used here, or it
    depends on a check that failed)."""
    detail: str
    """What was found, or why it was skipped; one line, no secret."""
    fix: str = ""
    """What to do about a problem; empty otherwise."""

    def line(self) -> str:
        """`ok       tls           ...`: verdict, name, detail, then the fix."""
        text = f"{self.verdict:<8} {self.name:<{NAME_WIDTH}} {_one_line(self.detail)}"
        if self.fix:
            text += f" — fix: {_one_line(self.fix)}"
        return text

    def as_dict(self) -> dict[str, str]:
        return {"check": self.name, "verdict": self.verdict, "detail": self.detail, "fix": self.fix}


def ok(name: str, detail: str) -> Check:
    return Check(name, "ok", detail)


def problem(name: str, detail: str, fix: str) -> Check:
    return Check(name, "problem", detail, fix)


def skipped(name: str, why: str) -> Check:
    return Check(name, "skipped", why)


def _one_line(text: str) -> str:
    """Servers and libraries may answer in several lines; the report keeps one per check."""
    return " ".join(text.split())


@dataclass
class Findings:
    """What the checks so far found, for the checks that depend on it."""

    settings: Settings
    environ: Mapping[str, str]
    sound_server_failed: bool = False
    """The sound server the device needs is not there: the device and the tone are skipped."""
    device: DeviceInfo | None = None
    """The configured device, once found."""
    credentials_failed: bool = False
    credentials: Credentials | None = None
    authorization: str = field(default="", repr=False)
    """The header value of SpeechKit calls, once the credentials gave one (a secret)."""
    host: str = ""
    port: int = 0
    resolved: bool = False
    """The endpoint's name resolved (or needs no resolving)."""
    reachable: bool = False
    """A connection (with TLS, if configured) to the endpoint succeeded."""
