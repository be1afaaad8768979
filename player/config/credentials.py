"""Credentials: the `Secret` wrapper and reading a key or token from config, file or
environment without ever putting its value into a message."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from pathlib import Path

from player.config.reader import TableReader

CREDENTIAL_KEYS = ("api_key", "iam_token", "api_key_file", "iam_token_file")


class Secret:
    """A credential whose value shows only through `reveal()`, never in repr or str."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "<secret>"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


def read_credentials(
    section: TableReader, environ: Mapping[str, str], resolve: Callable[[str], Path]
) -> tuple[Secret | None, Secret | None]:
    """Return (api_key, iam_token): at most one is set; the environment wins over the file."""
    given = {key: section.string(key, None, nonempty=True) for key in CREDENTIAL_KEYS}
    named = [key for key, value in given.items() if value is not None]
    if len(named) > 1:
        section.errors.append(
            f"[speechkit] sets {', '.join(named)}: set only one of {', '.join(CREDENTIAL_KEYS)}"
        )
    env_key = environ.get("YANDEX_API_KEY", "").strip()
    env_token = environ.get("YANDEX_IAM_TOKEN", "").strip()
    if env_key and env_token:
        section.errors.append(
            "both YANDEX_API_KEY and YANDEX_IAM_TOKEN are set in the environment; set only one"
        )
        return None, None
    if env_key or env_token:
        return (Secret(env_key), None) if env_key else (None, Secret(env_token))
    if len(named) != 1:
        return None, None
    key = named[0]
    value = given[key]
    if value is not None and key.endswith("_file"):
        value = _read_secret_file(section, key, resolve(value))
    if value is None:
        return None, None
    secret = Secret(value.strip())
    return (secret, None) if key.startswith("api_key") else (None, secret)


def _read_secret_file(section: TableReader, key: str, path: Path) -> str | None:
    """Return the file's stripped contents; problems name the path, never the contents."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        section.error(key, f"cannot read {path}: {exc.strerror or type(exc).__name__}")
        return None
    except UnicodeDecodeError:
        section.error(key, f"{path} is not UTF-8 text")
        return None
    if not text:
        section.error(key, f"{path} is empty")
        return None
    return text
