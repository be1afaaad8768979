"""A local stand-in for Yandex Cloud's IAM token service and a VM's metadata service.

`POST /iam/v1/tokens` takes `{"jwt": ...}` and answers `{"iamToken", "expiresAt"}` as the
cloud does, after checking the JWT as the cloud would: PS256, signed by the private half
of a registered key (verified with its public half), `kid` a key that is not revoked,
`iss` its service account, `aud` the token service, and at most an hour between `iat`
and `exp`. `GET /computeMetadata/v1/instance/service-accounts/default/token` with
`Metadata-Flavor: Google` answers `{"access_token", "expires_in", "token_type"}`.

Tokens live `lifetime_s` (short ones make renewals happen within a test); `valid(token)`
tells a SpeechKit stand-in whether one is still good (see `BearerCheck`). It runs on a
thread of its own, so a test's event loop never has to serve it.
"""

from __future__ import annotations

import datetime
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from player.local.service import Credentials

TOKENS_PATH = "/iam/v1/tokens"
METADATA_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"
AUDIENCE = "https://iam.api.cloud.yandex.net/iam/v1/tokens"
WARNING_LINE = "PLEASE DO NOT REMOVE THIS LINE! Yandex.Cloud SA Key ID <{}>\n"


@dataclass(frozen=True)
class GeneratedKey:
    """An authorized key made for a test: the JSON file Yandex issues, and its halves."""

    key_id: str
    service_account_id: str
    private_pem: str
    public_pem: str

    @classmethod
    def generate(
        cls, key_id: str = "ajetestkey0001", account: str = "ajetestaccount01"
    ) -> GeneratedKey:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private_pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        public_pem = (
            private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        return cls(key_id, account, private_pem, public_pem)

    def json(self) -> dict[str, str]:
        """The file's fields, as `yc iam key create` writes them."""
        return {
            "id": self.key_id,
            "service_account_id": self.service_account_id,
            "created_at": "2026-11-30T12:00:00.000000Z",
            "key_algorithm": "RSA_2048",
            "public_key": self.public_pem,
            "private_key": WARNING_LINE.format(self.key_id) + self.private_pem,
        }

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps(self.json(), indent=2), encoding="utf-8")
        return path

    def pem_body(self) -> list[str]:
        """The private key's base64 lines: what must never show anywhere."""
        return [line for line in self.private_pem.splitlines() if not line.startswith("-----")]


@dataclass
class _State:
    keys: dict[str, GeneratedKey] = field(default_factory=dict)
    revoked: set[str] = field(default_factory=set)
    lifetime_s: float = 3600.0
    issued: dict[str, float] = field(default_factory=dict)
    """Token -> Unix time it expires."""
    jwts: list[str] = field(default_factory=list)
    exchanges: int = 0
    """Token requests answered with a token."""
    refused: int = 0
    metadata_requests: int = 0
    user_agents: list[str] = field(default_factory=list)
    lock: threading.Condition = field(default_factory=threading.Condition)
    """Held to read or change any of the above; notified after each request."""


def _rfc3339(at: float) -> str:
    moment = datetime.datetime.fromtimestamp(at, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class IamServer:
    """The token service and the metadata service on one free local port."""

    def __init__(self, lifetime_s: float = 3600.0) -> None:
        self._state = _State(lifetime_s=lifetime_s)
        state = self._state

        class Handler(_Handler):
            shared = state

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        port = self._http.server_address[1]
        self.url = f"http://127.0.0.1:{port}{TOKENS_PATH}"
        self.metadata_url = f"http://127.0.0.1:{port}{METADATA_PATH}"

    def __enter__(self) -> IamServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(5.0)

    def register(self, key: GeneratedKey) -> None:
        with self._state.lock:
            self._state.keys[key.key_id] = key

    def revoke(self, key_id: str) -> None:
        with self._state.lock:
            self._state.revoked.add(key_id)

    @property
    def lifetime_s(self) -> float:
        """Seconds the tokens issued from now on live."""
        return self._state.lifetime_s

    @lifetime_s.setter
    def lifetime_s(self, seconds: float) -> None:
        with self._state.lock:
            self._state.lifetime_s = seconds

    @property
    def exchanges(self) -> int:
        return self._state.exchanges

    @property
    def refused(self) -> int:
        return self._state.refused

    @property
    def metadata_requests(self) -> int:
        return self._state.metadata_requests

    @property
    def issued(self) -> list[str]:
        with self._state.lock:
            return list(self._state.issued)

    @property
    def jwts(self) -> list[str]:
        with self._state.lock:
            return list(self._state.jwts)

    @property
    def user_agents(self) -> list[str]:
        with self._state.lock:
            return list(self._state.user_agents)

    def wait_until(self, check: Callable[[], bool], timeout: float) -> None:
        """Blocks until `check()` holds after some request (call it in a thread);
        TimeoutError after `timeout` seconds."""
        with self._state.lock:
            if not self._state.lock.wait_for(check, timeout):
                raise TimeoutError(f"the IAM stand-in did not see it within {timeout:g} s")

    def valid(self, token: str) -> bool:
        """Issued here and not expired."""
        with self._state.lock:
            expires = self._state.issued.get(token)
        return expires is not None and time.time() < expires


class BearerCheck(Credentials):
    """For `ToneScript.credentials`: accepts `Bearer <token>` while `valid(token)` holds."""

    def __init__(self, valid: Callable[[str], bool]) -> None:
        super().__init__()
        object.__setattr__(self, "_valid", valid)  # the base is a frozen dataclass

    def accept(self, metadata: dict[str, str]) -> bool:
        scheme, _, token = metadata.get("authorization", "").strip().partition(" ")
        valid: Callable[[str], bool] = getattr(self, "_valid")  # noqa: B009
        return scheme.lower() == "bearer" and valid(token.strip())


class _Handler(BaseHTTPRequestHandler):
    shared: _State

    def log_message(self, format: str, *args: object) -> None:
        pass  # the test's output is for the test

    def do_POST(self) -> None:
        if self.path != TOKENS_PATH:
            self._answer(404, {"code": 5, "message": "Not found"})
            return
        self._note_agent()
        length = int(self.headers.get("Content-Length") or 0)
        try:
            token_jwt = json.loads(self.rfile.read(length))["jwt"]
        except (ValueError, KeyError, TypeError):
            self._answer(400, {"code": 3, "message": 'Invalid request: expected {"jwt": ...}'})
            return
        problem = self._check(token_jwt)
        if problem is not None:
            with self.shared.lock:
                self.shared.refused += 1
            self._answer(problem[0], {"code": 16, "message": problem[1]})
            return
        token, expires = self._issue()
        with self.shared.lock:
            self.shared.jwts.append(token_jwt)
            self.shared.exchanges += 1
        self._answer(200, {"iamToken": token, "expiresAt": _rfc3339(expires)})

    def do_GET(self) -> None:
        if self.path != METADATA_PATH:
            self._answer(404, {"message": "Not found"})
            return
        self._note_agent()
        if self.headers.get("Metadata-Flavor") != "Google":
            self._answer(403, {"message": "Missing Metadata-Flavor:Google header"})
            return
        token, _ = self._issue()
        with self.shared.lock:
            self.shared.metadata_requests += 1
        lifetime = self.shared.lifetime_s
        self._answer(200, {"access_token": token, "expires_in": lifetime, "token_type": "Bearer"})

    def _check(self, token_jwt: str) -> tuple[int, str] | None:
        """(status, message) of a refusal, or None for a JWT worth a token."""
        try:
            header = jwt.get_unverified_header(token_jwt)
        except jwt.PyJWTError:
            return 400, "Invalid JWT"
        with self.shared.lock:
            key = self.shared.keys.get(str(header.get("kid")))
            revoked = key is not None and key.key_id in self.shared.revoked
        if key is None or revoked or header.get("alg") != "PS256":
            return 401, f"Key {header.get('kid')} is not found or revoked"
        try:
            claims = jwt.decode(
                token_jwt,
                key.public_pem,
                algorithms=["PS256"],
                audience=AUDIENCE,
                issuer=key.service_account_id,
                options={"require": ["iss", "aud", "iat", "exp"]},
            )
        except jwt.PyJWTError as err:
            return 401, f"JWT rejected: {type(err).__name__}"
        if claims["exp"] - claims["iat"] > 3600:
            return 400, "JWT lifetime exceeds 1 hour"
        return None

    def _issue(self) -> tuple[str, float]:
        token = "t1." + secrets.token_urlsafe(24)
        with self.shared.lock:
            expires = time.time() + self.shared.lifetime_s
            self.shared.issued[token] = expires
        return token, expires

    def _note_agent(self) -> None:
        with self.shared.lock:
            self.shared.user_agents.append(self.headers.get("User-Agent", ""))

    def _answer(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        with self.shared.lock:
            self.shared.lock.notify_all()
