"""A service account's authorized key, exchanged for IAM tokens.

As the Yandex Cloud SDKs do: a JWT signed with the key (PS256, `kid` the key's id, `iss`
the service account, `aud` the token service, valid for an hour at most) is sent to the
IAM token service, which answers `{"iamToken", "expiresAt"}`.
"""

from __future__ import annotations

import datetime
import random
import re

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from player.auth.http import HttpFailure, Unreachable, request_json
from player.auth.renewing import Clock, RenewingCredentials
from player.config.credentials import ServiceAccountKey
from player.errors import CredentialsError

AUDIENCE = "https://iam.api.cloud.yandex.net/iam/v1/tokens"
"""The JWT's `aud`: the same whatever URL the exchange goes to."""
JWT_LIFETIME_S = 3600
"""Seconds: the longest the token service accepts."""
_REFUSALS = frozenset({400, 401, 403})
"""What the token service answers a key it does not accept (revoked, deleted, unknown)."""
_FRACTION = re.compile(r"(\.\d{6})\d+")


def private_key(key: ServiceAccountKey) -> rsa.RSAPrivateKey:
    """The key, loaded without cryptography's consistency check of its primes: the check
    holds the interpreter for tens of milliseconds (a quarter second for a 4096-bit key),
    which starves the audio callback when a reload loads a key mid-utterance. A damaged
    key signs JWTs the token service refuses, which says so in one line."""
    try:
        loaded = serialization.load_pem_private_key(
            key.private_key.reveal().encode(), None, unsafe_skip_rsa_key_validation=True
        )
    except Exception:  # ValueError, TypeError, cryptography's UnsupportedAlgorithm
        loaded = None
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise CredentialsError(f"{key.path}: private_key is not a PEM RSA private key")
    return loaded


def signed_jwt(key: ServiceAccountKey, now: float, signer: rsa.RSAPrivateKey | None = None) -> str:
    """The JWT exchanged for a token at Unix time `now`, signed by `signer` (the key's
    private key, loaded)."""
    issued = int(now)
    claims = {
        "iss": key.service_account_id,
        "aud": AUDIENCE,
        "iat": issued,
        "exp": issued + JWT_LIFETIME_S,
    }
    return jwt.encode(
        claims, signer or private_key(key), algorithm="PS256", headers={"kid": key.key_id}
    )


def parse_expires_at(text: object) -> float:
    """An RFC 3339 time ("2026-12-01T11:00:00.123456789Z") as Unix time; ValueError if
    it is not one."""
    if not isinstance(text, str):
        raise ValueError("not a string")
    # Python reads at most microseconds; the service may send nanoseconds.
    value = _FRACTION.sub(r"\1", text.strip())
    if value[-1:] in ("Z", "z"):
        value = value[:-1] + "+00:00"
    moment = datetime.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("no time zone")
    return moment.timestamp()


class AuthorizedKeyCredentials(RenewingCredentials):
    """IAM tokens of the service account an authorized key belongs to."""

    kind = "service_account_key"

    def __init__(
        self,
        key: ServiceAccountKey,
        endpoint: str,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(clock=clock, rng=rng)
        self._key = key
        self._signer = private_key(key)
        self._endpoint = endpoint
        self._source = f"service account key {key.key_id}"

    async def _fetch(self) -> tuple[str, float]:
        token_jwt = signed_jwt(self._key, self._clock.time(), self._signer)
        try:
            answer = await request_json(self._endpoint, body={"jwt": token_jwt}, hide=(token_jwt,))
        except HttpFailure as err:
            said = str(err).replace(token_jwt, "<secret>")
            if err.status in _REFUSALS:
                raise CredentialsError(
                    f"the IAM service refused the service account key {self._key.key_id}: {said}"
                ) from None
            raise CredentialsError(
                f"the IAM service at {self._endpoint} failed: {said}", unreachable=True
            ) from None
        except Unreachable as err:
            raise CredentialsError(
                f"cannot reach the IAM service at {self._endpoint}: {err}", unreachable=True
            ) from None
        token = answer.get("iamToken")
        try:
            expires_at = parse_expires_at(answer.get("expiresAt"))
        except ValueError:
            expires_at = None
        if not isinstance(token, str) or not token or expires_at is None:
            raise CredentialsError(
                f"the IAM service at {self._endpoint} answered without an iamToken and "
                "expiresAt (is iam_endpoint the token service?)"
            )
        return token, expires_at
