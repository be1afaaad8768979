"""The `Credentials` interface, its static kinds, and picking the kind from the settings."""

from __future__ import annotations

import abc

from player.config import Secret, SpeechKitSettings


class Credentials(abc.ABC):
    """The `authorization` header of SpeechKit calls, renewed by `run` where it expires.

    Only the event loop calls it. No message it builds contains a secret's value.
    """

    kind: str
    """What the credential is, for status and logs: "api_key", "iam_token", ..."""

    @abc.abstractmethod
    async def authorization(self) -> str:
        """The header value for a call made now ("Api-Key ...", "Bearer ..."); waits,
        bounded, for the first token. Raises CredentialsError."""

    def rejected(self, authorization: str) -> bool:
        """The service answered UNAUTHENTICATED to a call made with `authorization`:
        renew at once. True when a renewed credential may be accepted, so the call is
        worth making again."""
        del authorization
        return False

    async def run(self) -> None:
        """Renew in the background until cancelled; kinds that never expire return."""
        return

    def expires_at(self) -> float | None:
        """Unix time the credential held now expires; None if it does not (or none is held)."""
        return None

    @abc.abstractmethod
    def scrub(self, text: str) -> str:
        """`text` with every secret held replaced by "<secret>": servers may echo what
        they were sent."""


class StaticCredentials(Credentials):
    """An API key or an IAM token given in the config or the environment."""

    def __init__(self, kind: str, scheme: str, secret: Secret) -> None:
        self.kind = kind
        self._scheme = scheme
        self._secret = secret

    async def authorization(self) -> str:
        return f"{self._scheme} {self._secret.reveal()}"

    def scrub(self, text: str) -> str:
        return text.replace(self._secret.reveal(), "<secret>") if self._secret else text


def open_credentials(speechkit: SpeechKitSettings) -> Credentials | None:
    """The credentials the settings name; None when they name none."""
    # The kinds are imported as needed: only a key pays for loading PyJWT and cryptography.
    if speechkit.api_key:
        return StaticCredentials("api_key", "Api-Key", speechkit.api_key)
    if speechkit.iam_token:
        if speechkit.iam_token_file is not None:
            from player.auth.token_file import TokenFileCredentials

            return TokenFileCredentials(speechkit.iam_token_file, speechkit.iam_token)
        return StaticCredentials("iam_token", "Bearer", speechkit.iam_token)
    if speechkit.service_account_key is not None:
        from player.auth.authorized_key import AuthorizedKeyCredentials

        return AuthorizedKeyCredentials(speechkit.service_account_key, speechkit.iam_endpoint)
    if speechkit.credentials == "metadata":
        from player.auth.metadata import MetadataCredentials

        return MetadataCredentials(speechkit.metadata_url)
    return None
