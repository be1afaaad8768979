"""Credentials: the `Secret` wrapper, a service account's authorized key, and reading a
key or token from config, file or environment without ever putting its value into a
message."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from player.config.reader import TableReader

CredentialSource = Literal["config", "metadata"]
SECRET_KEYS = ("api_key", "iam_token", "api_key_file", "iam_token_file")
CREDENTIAL_KEYS = (*SECRET_KEYS, "service_account_key_file")
ENV_VARS = ("YANDEX_API_KEY", "YANDEX_IAM_TOKEN", "YANDEX_SERVICE_ACCOUNT_KEY_FILE")
_KEY_FIELDS = ("id", "service_account_id", "private_key")
_PEM_START = "-----BEGIN"


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


@dataclass(frozen=True)
class ServiceAccountKey:
    """A Yandex Cloud authorized key, as `yc iam key create` writes it."""

    path: Path
    """The JSON file it was read from."""
    key_id: str
    """`id`: the key's own id, sent as the JWT's `kid`; not a secret."""
    service_account_id: str
    """`service_account_id`: the JWT's issuer; not a secret."""
    private_key: Secret
    """`private_key`: the RSA private key, PEM, without Yandex's leading warning line."""


class KeyFileError(ValueError):
    """An authorized key file that cannot be used; the message names the path and the
    field, never a value."""


def read_service_account_key(path: Path) -> ServiceAccountKey:
    """Read and check an authorized key file; raises KeyFileError."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise KeyFileError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    except UnicodeDecodeError:
        raise KeyFileError(f"{path} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        # Only the position: the parser's message may quote the text around it.
        raise KeyFileError(f"{path} is not JSON (line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(data, dict):
        raise KeyFileError(f"{path} is not an authorized key: expected a JSON object")
    missing = [
        name for name in _KEY_FIELDS if not isinstance(data.get(name), str) or not data[name]
    ]
    if missing:
        raise KeyFileError(
            f"{path} is not an authorized key: no {', '.join(missing)} "
            "(create one with `yc iam key create --service-account-name NAME -o FILE`)"
        )
    raw = str(data["private_key"])
    # Yandex puts a "PLEASE DO NOT REMOVE THIS LINE! ..." line before the PEM; PEM
    # parsers refuse it, so the key starts where the PEM does.
    start = raw.find(_PEM_START)
    pem = raw[start:] if start >= 0 else raw
    _check_rsa_private_key(path, pem)
    return ServiceAccountKey(path, str(data["id"]), str(data["service_account_id"]), Secret(pem))


def _check_rsa_private_key(path: Path, pem: str) -> None:
    # Imported here: only a config with a key file pays for loading cryptography.
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        # Parsed, not verified: the full check costs tens of milliseconds on every
        # command that reads the config; the daemon makes it once when it starts.
        key = serialization.load_pem_private_key(
            pem.encode(), password=None, unsafe_skip_rsa_key_validation=True
        )
    except Exception:  # ValueError, TypeError, cryptography's UnsupportedAlgorithm
        key = None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise KeyFileError(f"{path}: private_key is not an unencrypted PEM RSA private key")


@dataclass(frozen=True)
class GivenCredentials:
    """What the config and the environment name to authenticate with: one at most."""

    api_key: Secret | None = None
    iam_token: Secret | None = None
    iam_token_file: Path | None = None
    """Where `iam_token` was read from, to be read again when it changes."""
    service_account_key: ServiceAccountKey | None = None
    source: CredentialSource = "config"


def read_credentials(
    section: TableReader, environ: Mapping[str, str], resolve: Callable[[str], Path]
) -> GivenCredentials:
    """The credential to use: at most one is set; the environment wins over the file."""
    given = {key: section.string(key, None, nonempty=True) for key in CREDENTIAL_KEYS}
    named = [key for key, value in given.items() if value is not None]
    source = _source(section)
    if source == "metadata":
        named.insert(0, 'credentials = "metadata"')
    if len(named) > 1:
        section.errors.append(
            f"[speechkit] sets {', '.join(named)}: set only one of {', '.join(CREDENTIAL_KEYS)}"
            ' or credentials = "metadata"'
        )
    from_env = _from_environment(section, environ)
    if from_env is not None:
        return from_env
    if len(named) != 1:
        return GivenCredentials()
    if source == "metadata":
        return GivenCredentials(source="metadata")
    key = named[0]
    value = given[key]
    assert value is not None
    if key == "service_account_key_file":
        return _key_file(section, key, resolve(value))
    if key.endswith("_file"):
        path = resolve(value)
        text = read_secret_file(section, key, path)
        if text is None:
            return GivenCredentials()
        if key == "iam_token_file":
            return GivenCredentials(iam_token=Secret(text), iam_token_file=path)
        return GivenCredentials(api_key=Secret(text))
    secret = Secret(value.strip())
    return (
        GivenCredentials(api_key=secret) if key == "api_key" else GivenCredentials(iam_token=secret)
    )


def _source(section: TableReader) -> CredentialSource:
    raw = section.string("credentials", "config")
    if raw not in ("config", "metadata"):
        section.error(
            "credentials",
            f'expected "config" (the key or token set here) or "metadata" (the VM\'s '
            f'service account), found "{raw}"',
        )
        return "config"
    return "metadata" if raw == "metadata" else "config"


def _from_environment(section: TableReader, environ: Mapping[str, str]) -> GivenCredentials | None:
    """The environment's credential; None when it sets none (or, reported, several)."""
    found = {name: environ.get(name, "").strip() for name in ENV_VARS}
    named = [name for name, value in found.items() if value]
    if len(named) > 1:
        listed = f"both {named[0]} and {named[1]}" if len(named) == 2 else ", ".join(named)
        section.errors.append(f"{listed} are set in the environment; set only one")
        return GivenCredentials()
    if not named:
        return None
    name = named[0]
    value = found[name]
    if name == "YANDEX_API_KEY":
        return GivenCredentials(api_key=Secret(value))
    if name == "YANDEX_IAM_TOKEN":
        return GivenCredentials(iam_token=Secret(value))
    try:
        return GivenCredentials(service_account_key=read_service_account_key(Path(value)))
    except KeyFileError as err:
        section.errors.append(f"{name}: {err}")
        return GivenCredentials()


def _key_file(section: TableReader, key: str, path: Path) -> GivenCredentials:
    try:
        return GivenCredentials(service_account_key=read_service_account_key(path))
    except KeyFileError as err:
        section.error(key, str(err))
        return GivenCredentials()


def read_secret_file(section: TableReader, key: str, path: Path) -> str | None:
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
