"""[speechkit] service_account_key_file, credentials = "metadata" and the other new
credential settings: read, checked at load, and every problem one line naming the path
and the field, never a value."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from player.config import load_settings
from player.errors import ConfigError
from tests.harness.iam_server import GeneratedKey


@pytest.fixture(scope="module")
def made_key() -> GeneratedKey:
    return GeneratedKey.generate()


def errors_of(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> list[str]:
    path = tmp_path / "player.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ or {})
    return info.value.errors


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "player.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_key_file_is_read_without_yandexs_warning_line(
    tmp_path: Path, made_key: GeneratedKey
) -> None:
    made_key.write(tmp_path / "sa.json")
    path = config(tmp_path, '[speechkit]\nservice_account_key_file = "sa.json"\n')

    speechkit = load_settings(path, {}).speechkit

    key = speechkit.service_account_key
    assert key is not None
    assert (key.key_id, key.service_account_id) == (made_key.key_id, made_key.service_account_id)
    assert key.private_key.reveal() == made_key.private_pem
    assert speechkit.credential_kind == "service_account_key"
    assert not speechkit.uses_local
    assert "PRIVATE" not in repr(speechkit)


def test_the_environment_names_a_key_file(tmp_path: Path, made_key: GeneratedKey) -> None:
    made_key.write(tmp_path / "sa.json")
    path = config(tmp_path, '[speechkit]\napi_key = "from-file"\n')

    speechkit = load_settings(
        path, {"YANDEX_SERVICE_ACCOUNT_KEY_FILE": str(tmp_path / "sa.json")}
    ).speechkit

    assert speechkit.credential_kind == "service_account_key"
    assert speechkit.api_key is None


def test_two_credentials_in_the_environment_are_an_error(tmp_path: Path) -> None:
    environ = {"YANDEX_API_KEY": "a", "YANDEX_SERVICE_ACCOUNT_KEY_FILE": "/x.json"}

    assert errors_of(tmp_path, "", environ) == [
        "both YANDEX_API_KEY and YANDEX_SERVICE_ACCOUNT_KEY_FILE are set in the environment; "
        "set only one"
    ]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "cannot read {path}: No such file or directory"),
        ("not json SECRET", "{path} is not JSON (line 1, column 1)"),
        ("[]", "{path} is not an authorized key: expected a JSON object"),
        (
            json.dumps({"id": "k", "private_key": "SECRET"}),
            "{path} is not an authorized key: no service_account_id "
            "(create one with `yc iam key create --service-account-name NAME -o FILE`)",
        ),
        (
            json.dumps({"id": "k", "service_account_id": "a", "private_key": "SECRET"}),
            "{path}: private_key is not an unencrypted PEM RSA private key",
        ),
        (
            json.dumps(
                {
                    "id": "k",
                    "service_account_id": "a",
                    "private_key": "-----BEGIN PRIVATE KEY-----\nSECRET\n-----END PRIVATE KEY-----",
                }
            ),
            "{path}: private_key is not an unencrypted PEM RSA private key",
        ),
    ],
    ids=["missing", "not-json", "not-object", "missing-field", "not-pem", "bad-pem"],
)
def test_a_bad_key_file_is_one_line_naming_path_and_field(
    tmp_path: Path, content: str | None, problem: str
) -> None:
    key_path = tmp_path / "sa.json"
    if content is not None:
        key_path.write_text(content, encoding="utf-8")

    errors = errors_of(tmp_path, '[speechkit]\nservice_account_key_file = "sa.json"\n')

    assert errors == ["speechkit.service_account_key_file: " + problem.format(path=key_path)]
    assert "SECRET" not in errors[0]


def test_a_key_that_is_not_rsa_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    pem = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    key_path = tmp_path / "sa.json"
    key_path.write_text(json.dumps({"id": "k", "service_account_id": "a", "private_key": pem}))

    errors = errors_of(tmp_path, '[speechkit]\nservice_account_key_file = "sa.json"\n')

    assert errors == [
        f"speechkit.service_account_key_file: {key_path}: private_key is not an unencrypted "
        "PEM RSA private key"
    ]


def test_metadata_credentials(tmp_path: Path) -> None:
    path = config(tmp_path, '[speechkit]\ncredentials = "metadata"\nmetadata_url = "http://h/t"\n')

    speechkit = load_settings(path, {}).speechkit

    assert speechkit.credential_kind == "metadata"
    assert speechkit.metadata_url == "http://h/t"
    assert not speechkit.uses_local


def test_metadata_and_a_key_are_two_credentials(tmp_path: Path) -> None:
    errors = errors_of(tmp_path, '[speechkit]\ncredentials = "metadata"\napi_key = "k"\n')

    assert errors == [
        '[speechkit] sets credentials = "metadata", api_key: set only one of api_key, '
        "iam_token, api_key_file, iam_token_file, service_account_key_file or "
        'credentials = "metadata"'
    ]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            'credentials = "vm"',
            'speechkit.credentials: expected "config" (the key or token set here) or '
            '"metadata" (the VM\'s service account), found "vm"',
        ),
        (
            'iam_endpoint = "iam.example:443"',
            'speechkit.iam_endpoint: expected an http:// or https:// URL, found "iam.example:443"',
        ),
        ("data_logging = 1", "speechkit.data_logging: expected a boolean, found an integer"),
    ],
)
def test_bad_credential_settings(tmp_path: Path, text: str, error: str) -> None:
    assert errors_of(tmp_path, f"[speechkit]\n{text}\n") == [error]


def test_an_iam_token_file_is_remembered_to_be_read_again(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("t1.abc\n", encoding="utf-8")
    path = config(tmp_path, '[speechkit]\niam_token_file = "token"\n')

    speechkit = load_settings(path, {}).speechkit

    assert speechkit.iam_token_file == tmp_path / "token"
    assert speechkit.credential_kind == "iam_token"
