"""player.auth.authorized_key and player.auth.metadata against a real HTTP stand-in of the
IAM token service (tests/harness/iam_server.py): the JWT sent, the answer read, and what
a refusal or an unreachable service tells the caller."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest

from player.auth.authorized_key import (
    AUDIENCE,
    AuthorizedKeyCredentials,
    parse_expires_at,
    signed_jwt,
)
from player.auth.http import USER_AGENT
from player.auth.metadata import MetadataCredentials
from player.config.credentials import ServiceAccountKey, read_service_account_key
from player.errors import CredentialsError
from tests.e2e.common import closed_port
from tests.harness.iam_server import GeneratedKey, IamServer

NOW = 1_800_000_000.0


@pytest.fixture(scope="module")
def made_key() -> GeneratedKey:
    return GeneratedKey.generate()


@pytest.fixture
def key(made_key: GeneratedKey, tmp_path: Path) -> ServiceAccountKey:
    return read_service_account_key(made_key.write(tmp_path / "key.json"))


@pytest.fixture
def iam(made_key: GeneratedKey) -> Iterator[IamServer]:
    with IamServer(lifetime_s=600) as server:
        server.register(made_key)
        yield server


def test_the_jwt_is_signed_with_the_key_and_names_it(
    key: ServiceAccountKey, made_key: GeneratedKey
) -> None:
    token = signed_jwt(key, NOW)

    header = jwt.get_unverified_header(token)
    assert header["alg"] == "PS256"
    assert header["kid"] == made_key.key_id
    claims = jwt.decode(
        token,
        made_key.public_pem,
        algorithms=["PS256"],
        audience=AUDIENCE,
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims == {
        "iss": made_key.service_account_id,
        "aud": "https://iam.api.cloud.yandex.net/iam/v1/tokens",
        "iat": int(NOW),
        "exp": int(NOW) + 3600,
    }


def test_the_jwt_does_not_verify_with_another_key(key: ServiceAccountKey) -> None:
    other = GeneratedKey.generate()
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(signed_jwt(key, NOW), other.public_pem, algorithms=["PS256"], audience=AUDIENCE)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-01T11:00:00.123456Z", datetime.datetime(2026, 12, 1, 11, 0, 0, 123456)),
        ("2026-12-01T11:00:00.123456789Z", datetime.datetime(2026, 12, 1, 11, 0, 0, 123456)),
        ("2026-12-01T11:00:00Z", datetime.datetime(2026, 12, 1, 11)),
        ("2026-12-01T14:00:00+03:00", datetime.datetime(2026, 12, 1, 11)),
        ("2026-12-01t11:00:00z", datetime.datetime(2026, 12, 1, 11)),
    ],
)
def test_expires_at_is_read_as_rfc3339(text: str, expected: datetime.datetime) -> None:
    assert parse_expires_at(text) == expected.replace(tzinfo=datetime.UTC).timestamp()


@pytest.mark.parametrize("text", ["", "2026-12-01T11:00:00", "tomorrow", 1764586800, None])
def test_a_malformed_expires_at_is_an_error(text: object) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_expires_at(text)


async def test_the_key_is_exchanged_for_a_token(key: ServiceAccountKey, iam: IamServer) -> None:
    creds = AuthorizedKeyCredentials(key, iam.url)

    header = await creds.authorization()

    scheme, token = header.split(" ")
    assert scheme == "Bearer"
    assert iam.valid(token)
    assert iam.exchanges == 1
    assert iam.user_agents == [USER_AGENT]
    assert USER_AGENT.startswith("speechkit-player/")
    expires = creds.expires_at()
    assert expires is not None
    assert 590 < expires - datetime.datetime.now(datetime.UTC).timestamp() <= 600


async def test_a_revoked_key_is_one_line_naming_the_key(
    key: ServiceAccountKey, iam: IamServer
) -> None:
    iam.revoke(key.key_id)
    creds = AuthorizedKeyCredentials(key, iam.url)

    with pytest.raises(CredentialsError) as info:
        await creds.authorization()

    assert str(info.value) == (
        f"the IAM service refused the service account key {key.key_id}: "
        f"HTTP 401: Key {key.key_id} is not found or revoked"
    )
    assert not info.value.unreachable


async def test_an_unreachable_token_service_is_one_line(key: ServiceAccountKey) -> None:
    url = f"http://{closed_port()}/iam/v1/tokens"
    creds = AuthorizedKeyCredentials(key, url)

    with pytest.raises(CredentialsError) as info:
        await creds.authorization()

    assert str(info.value) == f"cannot reach the IAM service at {url}: Connection refused"
    assert info.value.unreachable


async def test_the_metadata_service_gives_the_vms_token(iam: IamServer) -> None:
    creds = MetadataCredentials(iam.metadata_url)

    scheme, token = (await creds.authorization()).split(" ")

    assert scheme == "Bearer"
    assert iam.valid(token)
    assert iam.metadata_requests == 1


async def test_no_metadata_service_is_one_line() -> None:
    url = f"http://{closed_port()}/computeMetadata/v1/instance/service-accounts/default/token"

    with pytest.raises(CredentialsError, match=r"^cannot reach the VM metadata service at "):
        await MetadataCredentials(url).authorization()
