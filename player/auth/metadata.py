"""IAM tokens of a Yandex Cloud VM's service account, from the VM's metadata service
(`GET .../service-accounts/default/token` with `Metadata-Flavor: Google`)."""

from __future__ import annotations

import random

from player.auth.http import HttpFailure, Unreachable, request_json
from player.auth.renewing import Clock, RenewingCredentials
from player.errors import CredentialsError


class MetadataCredentials(RenewingCredentials):
    """The VM's service account's tokens; no key is kept on the machine."""

    kind = "metadata"

    def __init__(
        self, url: str, *, clock: Clock | None = None, rng: random.Random | None = None
    ) -> None:
        super().__init__(clock=clock, rng=rng)
        self._url = url
        self._source = "VM metadata service"

    async def _fetch(self) -> tuple[str, float]:
        try:
            answer = await request_json(self._url, headers={"Metadata-Flavor": "Google"})
        except HttpFailure as err:
            raise CredentialsError(
                f"the VM metadata service at {self._url} gave no token: {err} "
                "(does the VM have a service account?)"
            ) from None
        except Unreachable as err:
            raise CredentialsError(
                f"cannot reach the VM metadata service at {self._url}: {err} "
                '(credentials = "metadata" works on a Yandex Cloud VM only)',
                unreachable=True,
            ) from None
        token, expires_in = answer.get("access_token"), answer.get("expires_in")
        if (
            not isinstance(token, str)
            or not token
            or not isinstance(expires_in, int | float)
            or isinstance(expires_in, bool)
        ):
            raise CredentialsError(
                f"the VM metadata service at {self._url} answered without an access_token "
                "and expires_in"
            )
        return token, self._clock.time() + float(expires_in)
