"""Behaviour of player.config.loader: loading, validation, credentials and secret hygiene."""

from __future__ import annotations

import dataclasses
import os
import socket
from pathlib import Path

import pytest

from player.config import (
    AudioSettings,
    CacheSettings,
    ChimeSettings,
    ControlSettings,
    LocalSettings,
    MqttSettings,
    Secret,
    Settings,
    SpeechKitSettings,
    SsipSettings,
    StreamSettings,
    VoiceSettings,
    load_settings,
)
from player.config.settings import TextSettings
from player.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[3] / "config" / "player.toml"
ENV = {"XDG_RUNTIME_DIR": "/run/user/1000"}
# Neither environment here names a home or a cache folder: the process's own home.
DEFAULT_CACHE = CacheSettings(Path("~/.cache/speechkit-player/phrases").expanduser(), 200)


def write(tmp_path: Path, text: str, name: str = "player.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def piper_model(folder: Path, name: str) -> Path:
    """A dummy Piper voice: the model file and the .onnx.json beside it."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"onnx")
    Path(f"{path}.json").write_text("{}", encoding="utf-8")
    return path


def errors_of(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text), ENV if environ is None else environ)
    return info.value.errors


def test_no_file_gives_defaults():
    settings = load_settings(None, ENV)

    assert settings == Settings(
        speechkit=SpeechKitSettings(),
        voice=VoiceSettings(),
        audio=AudioSettings(),
        control=ControlSettings(socket=Path("/run/user/1000/speechkit-player.sock")),
        local=LocalSettings(),
        stream=StreamSettings(),
        chimes=ChimeSettings(),
        source=None,
        cache=DEFAULT_CACHE,
        mqtt=MqttSettings(client_id=socket.gethostname()),
        ssip=SsipSettings(Path("/run/user/1000/speech-dispatcher/speechd.sock"), auto=True),
    )
    assert settings.speechkit.credential_kind is None
    assert settings.speechkit.uses_local


def test_full_file_round_trip(tmp_path):
    model = piper_model(tmp_path, "models/joe.onnx")
    voice = piper_model(tmp_path, "alena.onnx")
    chime = tmp_path / "sounds" / "ding.wav"
    chime.parent.mkdir()
    chime.write_bytes(b"RIFF")
    path = write(
        tmp_path,
        """
        [speechkit]
        endpoint = "localhost:50051"
        tls = false
        api_key = "  key-123  "
        folder_id = "b1gfolder"
        connect_timeout = 2
        fallback = "local"

        [voice]
        voice = "alena"
        role = "good"
        speed = 1.5
        volume = 0.5
        pitch_shift = -120.5
        loudness = "max_peak"

        [audio]
        device = 3
        samplerate = 48000
        channels = 1
        block_ms = 20
        buffer_ms = 4000
        prebuffer_ms = 2000
        fade_ms = 0
        idle_stop_ms = 0

        [control]
        socket = "run/player.sock"

        [local]
        model = "models/joe.onnx"
        listen = "unix:/run/piper.sock"
        workers = 4

        [local.voices]
        alena = "alena.onnx"

        [stream]
        pause_ms = 500
        idle_close_s = 10

        [chimes]
        important = "sounds/ding.wav"
        """,
    )

    settings = load_settings(path, {})

    assert settings == Settings(
        speechkit=SpeechKitSettings(
            endpoint="localhost:50051",
            tls=False,
            api_key=Secret("key-123"),
            folder_id="b1gfolder",
            connect_timeout=2.0,
            fallback="local",
        ),
        voice=VoiceSettings(
            voice="alena",
            role="good",
            speed=1.5,
            volume=0.5,
            pitch_shift=-120.5,
            loudness="MAX_PEAK",
        ),
        audio=AudioSettings(
            device=3,
            samplerate=48000,
            channels=1,
            block_ms=20.0,
            buffer_ms=4000,
            prebuffer_ms=2000,
            fade_ms=0.0,
            idle_stop_ms=0,
        ),
        control=ControlSettings(socket=tmp_path / "run" / "player.sock"),
        local=LocalSettings(
            model=model, voices=(("alena", voice),), listen="unix:/run/piper.sock", workers=4
        ),
        stream=StreamSettings(pause_ms=500, idle_close_s=10.0),
        chimes=ChimeSettings(important=chime),
        source=path,
        cache=DEFAULT_CACHE,
        mqtt=MqttSettings(client_id=socket.gethostname()),
        # No runtime directory named: under the process's own home's cache.
        ssip=SsipSettings(Path("~/.cache/speech-dispatcher/speechd.sock").expanduser(), auto=True),
    )
    assert settings.speechkit.credential_kind == "api_key"
    assert not settings.speechkit.uses_local
    assert isinstance(settings.speechkit.connect_timeout, float)


def test_answer_timeouts_default_and_read(tmp_path):
    defaults = load_settings(None, ENV).speechkit
    assert (defaults.first_audio_timeout_s, defaults.stall_timeout_s) == (10.0, 5.0)
    path = write(tmp_path, "[speechkit]\nfirst_audio_timeout_s = 1\nstall_timeout_s = 0.5\n")
    speechkit = load_settings(path, ENV).speechkit
    assert (speechkit.first_audio_timeout_s, speechkit.stall_timeout_s) == (1.0, 0.5)
    assert isinstance(speechkit.first_audio_timeout_s, float)


def test_answer_timeouts_must_be_numbers(tmp_path):
    errors = errors_of(tmp_path, '[speechkit]\nstall_timeout_s = "5s"\nfirst_audio_timeout = 3')
    assert errors[0].startswith("speechkit.stall_timeout_s: expected a number")
    assert "first_audio_timeout_s" in errors[1]  # the misspelling gets a suggestion


def test_a_missing_chime_is_named(tmp_path):
    errors = errors_of(tmp_path, '[chimes]\nimportant = "nowhere.wav"\nimportnt = "x.wav"\n')
    assert any(e.startswith("chimes.important:") and "nowhere.wav" in e for e in errors)
    assert any("importnt" in e and "important" in e for e in errors)


def test_device_may_be_a_name(tmp_path):
    settings = load_settings(write(tmp_path, '[audio]\ndevice = "USB Audio"\n'), ENV)

    assert settings.audio.device == "USB Audio"


def test_every_error_is_reported_at_once(tmp_path):
    errors = errors_of(
        tmp_path,
        """
        [voice]
        spead = 1.2
        pitch_shift = "high"
        [audio]
        channels = 9
        """,
    )

    assert len(errors) == 3
    assert 'unknown key [voice] "spead"; did you mean "speed"?' in errors
    assert "voice.pitch_shift: expected a number, found a string" in errors
    assert "audio.channels: 9 is out of range [0, 8]" in errors


def test_config_error_message_lists_every_error_under_the_path(tmp_path):
    path = write(tmp_path, "[voice]\nspeed = 9\nvoice = ''\n")

    with pytest.raises(ConfigError) as info:
        load_settings(path, ENV)

    assert str(info.value) == (
        f"invalid configuration in {path}:\n"
        "  - voice.voice: must not be empty\n"
        "  - voice.speed: 9 is out of range [0.1, 3]"
    )


def test_misspelled_key_suggests_the_closest_name(tmp_path):
    errors = errors_of(tmp_path, '[audio]\nbufer_ms = 1000\n[speechkit]\napi_kye = "x"\n')

    assert errors == [
        'unknown key [speechkit] "api_kye"; did you mean "api_key"?',
        'unknown key [audio] "bufer_ms"; did you mean "buffer_ms"?',
    ]


def test_unknown_key_without_close_match_lists_the_valid_keys(tmp_path):
    (error,) = errors_of(tmp_path, "[control]\nzzz = 1\n")

    assert error == 'unknown key [control] "zzz"; valid keys: socket'


def test_unknown_section_suggests_the_closest_name(tmp_path):
    errors = errors_of(tmp_path, "[vioce]\nspeed = 1.0\n[network]\nport = 1\n")

    assert errors == ["unknown section [vioce]; did you mean [voice]?", "unknown section [network]"]


def test_keys_outside_any_section_are_errors(tmp_path):
    errors = errors_of(tmp_path, 'speed = 1.0\ncolour = "red"\nvoice = "alena"\n')

    assert errors == [
        "voice: expected a table [voice], found a string",
        'key "speed" is outside any section; it belongs in [voice]',
        'unknown top-level key "colour"; '
        "settings go in [speechkit], [voice], [audio], [control], [local], [stream], [text], "
        "[chimes], [metrics], [cache], [mqtt], [ssip]",
    ]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("[audio]\nsamplerate = true", "audio.samplerate: expected an integer, found a boolean"),
        ("[audio]\nbuffer_ms = 500.0", "audio.buffer_ms: expected an integer, found a float"),
        ("[voice]\nspeed = true", "voice.speed: expected a number, found a boolean"),
        ("[voice]\nspeed = [1]", "voice.speed: expected a number, found an array"),
        ("[voice]\nspeed = nan", "voice.speed: expected a finite number"),
        ("[voice]\nvoice = 7", "voice.voice: expected a string, found an integer"),
        ("[speechkit]\ntls = 1", "speechkit.tls: expected a boolean, found an integer"),
        ("[speechkit]\nfolder_id = {}", "speechkit.folder_id: expected a string, found a table"),
        ("[control]\nsocket = 1979-05-27", "control.socket: expected a string, found a date/time"),
        (
            "[audio]\ndevice = true",
            "audio.device: expected a device name or a PortAudio index >= 0, found a boolean",
        ),
        (
            "[audio]\ndevice = -1",
            "audio.device: expected a device name or a PortAudio index >= 0, found -1",
        ),
    ],
)
def test_type_errors_name_the_key_and_both_types(tmp_path, text, error):
    assert errors_of(tmp_path, text) == [error]


def test_integers_are_accepted_for_floats(tmp_path):
    settings = load_settings(write(tmp_path, "[voice]\nspeed = 2\npitch_shift = -5\n"), ENV)

    assert settings.voice.speed == 2.0
    assert isinstance(settings.voice.pitch_shift, float)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("[voice]\nspeed = 0.05", "voice.speed: 0.05 is out of range [0.1, 3]"),
        ("[voice]\npitch_shift = 1001", "voice.pitch_shift: 1001 is out of range [-1000, 1000]"),
        ("[audio]\nsamplerate = 4000", "audio.samplerate: 4000 is out of range 0 or [8000, 48000]"),
        (
            "[audio]\nsamplerate = 96000",
            "audio.samplerate: 96000 is out of range 0 or [8000, 48000]",
        ),
        ("[audio]\nchannels = -1", "audio.channels: -1 is out of range [0, 8]"),
        ("[audio]\nblock_ms = 0.5", "audio.block_ms: 0.5 is out of range [1, 100]"),
        ("[audio]\nbuffer_ms = 100", "audio.buffer_ms: 100 is out of range [200, 60000]"),
        ("[audio]\nfade_ms = 101", "audio.fade_ms: 101 is out of range [0, 100]"),
        ("[speechkit]\nconnect_timeout = 0", "speechkit.connect_timeout: 0 is out of range > 0"),
        (
            "[speechkit]\nfirst_audio_timeout_s = 0.4",
            "speechkit.first_audio_timeout_s: 0.4 is out of range [0.5, 600]",
        ),
        (
            "[speechkit]\nstall_timeout_s = 601",
            "speechkit.stall_timeout_s: 601 is out of range [0.5, 600]",
        ),
        (
            "[audio]\nbuffer_ms = 1000\nprebuffer_ms = 501",
            "audio.prebuffer_ms: 501 is out of range [0, 500] (at most half of buffer_ms)",
        ),
        (
            '[voice]\nloudness = "peak"',
            'voice.loudness: expected "LUFS" or "MAX_PEAK", found "peak"',
        ),
        (
            '[speechkit]\nendpoint = "localhost"',
            'speechkit.endpoint: expected "host:port" or "local", found "localhost"',
        ),
        (
            '[speechkit]\nendpoint = ":443"',
            'speechkit.endpoint: expected "host:port" or "local", found ":443"',
        ),
        ('[speechkit]\nendpoint = ""', "speechkit.endpoint: must not be empty"),
        ('[voice]\nvoice = "  "', "voice.voice: must not be empty"),
    ],
)
def test_range_errors(tmp_path, text, error):
    assert errors_of(tmp_path, text) == [error]


@pytest.mark.parametrize(
    ("loudness", "volume", "valid"),
    [
        ("LUFS", -19.0, True),
        ("LUFS", -145.0, True),
        ("LUFS", 0.0, False),
        ("LUFS", -146.0, False),
        ("LUFS", 0.7, False),
        ("MAX_PEAK", 0.7, True),
        ("MAX_PEAK", 1.0, True),
        ("MAX_PEAK", 0.0, False),
        ("MAX_PEAK", -19.0, False),
    ],
)
def test_volume_range_depends_on_loudness(tmp_path, loudness, volume, valid):
    path = write(tmp_path, f'[voice]\nloudness = "{loudness}"\nvolume = {volume}\n')

    if valid:
        assert load_settings(path, ENV).voice.volume == volume
    else:
        with pytest.raises(ConfigError) as info:
            load_settings(path, ENV)
        (error,) = info.value.errors
        assert error.startswith(f"voice.volume: {volume:g} is out of range")
        assert error.endswith(f'for loudness "{loudness}"')


def test_invalid_loudness_does_not_add_a_volume_error(tmp_path):
    errors = errors_of(tmp_path, '[voice]\nloudness = "peak"\nvolume = 0.5\n')

    assert errors == ['voice.loudness: expected "LUFS" or "MAX_PEAK", found "peak"']


def test_env_api_key_replaces_the_files_credential(tmp_path):
    path = write(tmp_path, '[speechkit]\niam_token = "from-file"\n')

    speechkit = load_settings(path, {"YANDEX_API_KEY": "from-env"}).speechkit

    assert speechkit.api_key == Secret("from-env")
    assert speechkit.iam_token is None
    assert speechkit.credential_kind == "api_key"


def test_env_iam_token_replaces_the_files_credential(tmp_path):
    path = write(tmp_path, '[speechkit]\napi_key_file = "missing.txt"\n')

    speechkit = load_settings(path, {"YANDEX_IAM_TOKEN": "t1.token"}).speechkit

    assert speechkit.iam_token == Secret("t1.token")
    assert speechkit.api_key is None
    assert speechkit.credential_kind == "iam_token"


def test_both_credential_env_vars_are_an_error():
    with pytest.raises(ConfigError) as info:
        load_settings(None, {"YANDEX_API_KEY": "a", "YANDEX_IAM_TOKEN": "b"})

    assert info.value.errors == [
        "both YANDEX_API_KEY and YANDEX_IAM_TOKEN are set in the environment; set only one"
    ]
    # One problem is one line (the CLI prints it as it is); several are listed one a line.
    assert str(info.value) == "invalid configuration: " + info.value.errors[0]


def test_empty_env_vars_count_as_unset(tmp_path):
    path = write(tmp_path, '[speechkit]\napi_key = "from-file"\n')

    speechkit = load_settings(path, {"YANDEX_API_KEY": "", "YANDEX_IAM_TOKEN": " "}).speechkit

    assert speechkit.api_key == Secret("from-file")


def test_folder_id_comes_from_env_only_when_the_file_has_none(tmp_path):
    with_folder = write(tmp_path, '[speechkit]\nfolder_id = "file-folder"\n', "a.toml")
    without = write(tmp_path, "", "b.toml")
    environ = {"YANDEX_FOLDER_ID": "env-folder"}

    assert load_settings(with_folder, environ).speechkit.folder_id == "file-folder"
    assert load_settings(without, environ).speechkit.folder_id == "env-folder"


def test_more_than_one_credential_in_the_file_is_an_error(tmp_path):
    errors = errors_of(tmp_path, '[speechkit]\napi_key = "a"\niam_token_file = "t.txt"\n')

    assert errors == [
        "[speechkit] sets api_key, iam_token_file: set only one of api_key, iam_token, "
        'api_key_file, iam_token_file, service_account_key_file or credentials = "metadata"'
    ]


def test_key_file_is_relative_to_the_config_folder(tmp_path, monkeypatch):
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "token").write_text("\n  t1.abc  \n", encoding="utf-8")
    path = write(tmp_path, '[speechkit]\niam_token_file = "secrets/token"\n')
    monkeypatch.chdir("/")

    speechkit = load_settings(path, ENV).speechkit

    assert speechkit.iam_token == Secret("t1.abc")
    assert speechkit.credential_kind == "iam_token"


def test_missing_key_file_names_the_path(tmp_path):
    errors = errors_of(tmp_path, '[speechkit]\napi_key_file = "nope.txt"\n')

    assert errors == [
        f"speechkit.api_key_file: cannot read {tmp_path / 'nope.txt'}: No such file or directory"
    ]


def test_empty_key_file_is_an_error(tmp_path):
    (tmp_path / "key.txt").write_text(" \n\t\n", encoding="utf-8")

    errors = errors_of(tmp_path, '[speechkit]\napi_key_file = "key.txt"\n')

    assert errors == [f"speechkit.api_key_file: {tmp_path / 'key.txt'} is empty"]


@pytest.mark.parametrize(
    ("text", "environ", "uses_local"),
    [
        pytest.param("", {}, True, id="cloud-without-credentials"),
        pytest.param(
            '[speechkit]\nendpoint = "tts.api.cloud.yandex.net:443"\n',
            {},
            True,
            id="explicit-cloud-without-credentials",
        ),
        pytest.param('[speechkit]\nendpoint = "local"\n', {}, True, id="local"),
        pytest.param(
            '[speechkit]\nendpoint = "local"\napi_key = "k"\n', {}, True, id="local-with-key"
        ),
        pytest.param("", {"YANDEX_API_KEY": "k"}, False, id="cloud-with-env-key"),
        pytest.param('[speechkit]\napi_key = "k"\n', {}, False, id="cloud-with-key"),
        pytest.param('[speechkit]\niam_token = "t"\n', {}, False, id="cloud-with-token"),
        pytest.param(
            '[speechkit]\nendpoint = "localhost:50051"\ntls = false\n',
            {},
            False,
            id="custom-endpoint-without-credentials",
        ),
    ],
)
def test_uses_local(tmp_path, text, environ, uses_local):
    speechkit = load_settings(write(tmp_path, text), environ).speechkit

    assert speechkit.uses_local is uses_local


def test_endpoint_may_be_local(tmp_path):
    settings = load_settings(write(tmp_path, '[speechkit]\nendpoint = "local"\n'), ENV)

    assert settings.speechkit.endpoint == "local"


@pytest.mark.parametrize("endpoint", ["Local", "local:", "local:0"])
def test_a_malformed_endpoint_error_mentions_local(tmp_path, endpoint):
    errors = errors_of(tmp_path, f'[speechkit]\nendpoint = "{endpoint}"\n')

    assert errors == [f'speechkit.endpoint: expected "host:port" or "local", found "{endpoint}"']


@pytest.mark.parametrize("fallback", ["none", "local"])
def test_fallback_may_be_none_or_local(tmp_path, fallback):
    path = write(tmp_path, f'[speechkit]\nfallback = "{fallback}"\n')

    assert load_settings(path, ENV).speechkit.fallback == fallback


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ('"cloud"', 'speechkit.fallback: expected "none" or "local", found "cloud"'),
        ('""', 'speechkit.fallback: expected "none" or "local", found ""'),
        ("true", "speechkit.fallback: expected a string, found a boolean"),
    ],
)
def test_other_fallbacks_are_errors(tmp_path, value, error):
    assert errors_of(tmp_path, f"[speechkit]\nfallback = {value}\n") == [error]


def test_local_model_must_exist(tmp_path):
    errors = errors_of(tmp_path, '[local]\nmodel = "missing.onnx"\n')

    assert errors == [f"local.model: no Piper model at {tmp_path / 'missing.onnx'}"]


def test_local_model_needs_its_json_beside_it(tmp_path):
    (tmp_path / "x.onnx").write_bytes(b"onnx")

    errors = errors_of(tmp_path, '[local]\nmodel = "x.onnx"\n')

    assert errors == [
        f"local.model: {tmp_path / 'x.onnx'} has no x.onnx.json beside it (Piper needs both)"
    ]


def test_local_voices_name_their_models(tmp_path):
    model = piper_model(tmp_path, "x.onnx")

    local = load_settings(write(tmp_path, '[local.voices]\nmarina = "x.onnx"\n'), ENV).local

    assert local.voices == (("marina", model),)
    assert local.model is None


def test_local_model_paths_are_relative_to_the_config_folder(tmp_path, monkeypatch):
    model = piper_model(tmp_path, "voices/joe.onnx")
    voice = piper_model(tmp_path, "voices/alena.onnx")
    path = write(
        tmp_path, '[local]\nmodel = "voices/joe.onnx"\nvoices.alena = "voices/alena.onnx"\n'
    )
    monkeypatch.chdir("/")

    local = load_settings(path, ENV).local

    assert local.model == model
    assert local.voices == (("alena", voice),)


def test_local_model_path_expands_home(tmp_path):
    model = piper_model(tmp_path, "voices/joe.onnx")
    path = write(tmp_path, '[local]\nmodel = "~/voices/joe.onnx"\n', "elsewhere.toml")

    assert load_settings(path, {"HOME": str(tmp_path)}).local.model == model


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            "[local.voices]\nalena = 3",
            "local.voices.alena: expected a model path, found an integer",
        ),
        (
            '[local.voices]\nalena = ["a.onnx"]',
            "local.voices.alena: expected a model path, found an array",
        ),
        (
            '[local]\nvoices = "a.onnx"',
            "local.voices: expected a table [local.voices], found a string",
        ),
    ],
)
def test_local_voices_must_be_a_table_of_paths(tmp_path, text, error):
    assert errors_of(tmp_path, text) == [error]


@pytest.mark.parametrize(
    "listen", ["127.0.0.1:50051", "localhost:1", "[::1]:65535", "unix:/run/piper.sock", "unix:rel"]
)
def test_local_listen_accepts_host_port_or_unix_path(tmp_path, listen):
    path = write(tmp_path, f'[local]\nlisten = "{listen}"\n')

    assert load_settings(path, ENV).local.listen == listen


@pytest.mark.parametrize(
    "listen",
    [
        "50051",
        "localhost",
        ":50051",
        "localhost:0",
        "localhost:65536",
        "/run/piper.sock",
        "unix:",
    ],
)
def test_local_listen_rejects_anything_else(tmp_path, listen):
    errors = errors_of(tmp_path, f'[local]\nlisten = "{listen}"\n')

    assert errors == [f'local.listen: expected "host:port" or "unix:PATH", found "{listen}"']


@pytest.mark.parametrize(("workers", "valid"), [(1, True), (16, True), (0, False), (17, False)])
def test_local_workers_range(tmp_path, workers, valid):
    path = write(tmp_path, f"[local]\nworkers = {workers}\n")

    if valid:
        assert load_settings(path, ENV).local.workers == workers
    else:
        with pytest.raises(ConfigError) as info:
            load_settings(path, ENV)
        assert info.value.errors == [f"local.workers: {workers} is out of range [1, 16]"]


def test_local_typo_suggests_the_key(tmp_path):
    assert errors_of(tmp_path, "[local]\nworkrs = 3\n") == [
        'unknown key [local] "workrs"; did you mean "workers"?'
    ]


def test_every_local_error_is_reported_at_once(tmp_path):
    (tmp_path / "half.onnx").write_bytes(b"onnx")

    errors = errors_of(
        tmp_path,
        """
        [speechkit]
        fallback = "cloud"

        [local]
        model = "missing.onnx"
        listen = "50051"
        workers = 0
        modle = "x.onnx"

        [local.voices]
        alena = 3
        jane = "half.onnx"
        """,
    )

    assert errors == [
        'speechkit.fallback: expected "none" or "local", found "cloud"',
        f"local.model: no Piper model at {tmp_path / 'missing.onnx'}",
        'local.listen: expected "host:port" or "unix:PATH", found "50051"',
        "local.voices.alena: expected a model path, found an integer",
        f"local.voices.jane: {tmp_path / 'half.onnx'} has no half.onnx.json beside it "
        "(Piper needs both)",
        "local.workers: 0 is out of range [1, 16]",
        'unknown key [local] "modle"; did you mean "model"?',
    ]


def test_secret_hides_its_value():
    secret = Secret("hunter2")

    assert repr(secret) == str(secret) == f"{secret}" == "<secret>"
    assert secret.reveal() == "hunter2"
    assert secret == Secret("hunter2")
    assert secret != Secret("other")
    assert hash(secret) == hash(Secret("hunter2"))
    assert secret
    assert not Secret("")


def test_secrets_never_appear_in_errors_or_settings(tmp_path):
    (tmp_path / "key.txt").write_text("SECRET-FROM-KEY-FILE", encoding="utf-8")
    (tmp_path / "bad.txt").write_bytes(b"SECRET-BAD-\xff")
    cases = [
        ("[speechkit]\napi_key = 987654321\n", {}),
        ('[speechkit]\niam_token = ["SECRET-IN-ARRAY"]\n', {}),
        ('[speechkit]\napi_key = { v = "SECRET-IN-TABLE" }\n', {}),
        ('[speechkit]\napi_key = "SECRET-INLINE"\napi_key_file = "key.txt"\n', {}),
        ('[speechkit]\napi_key_file = "bad.txt"\n', {}),
        ('api_key = "SECRET-TOP-LEVEL"\n', {}),
        ('[speechkit]\napi_kye = "SECRET-MISSPELLED"\n', {}),
        ("", {"YANDEX_API_KEY": "SECRET-ENV-KEY", "YANDEX_IAM_TOKEN": "SECRET-ENV-TOKEN"}),
    ]
    for text, environ in cases:
        with pytest.raises(ConfigError) as info:
            load_settings(write(tmp_path, text), environ)
        shown = f"{info.value}\n{info.value!r}\n{info.value.errors}"
        assert "SECRET" not in shown, text
        assert "987654321" not in shown

    path = write(tmp_path, '[speechkit]\napi_key_file = "key.txt"\n')
    settings = load_settings(path, {"YANDEX_FOLDER_ID": "f"})
    assert settings.speechkit.api_key == Secret("SECRET-FROM-KEY-FILE")
    for shown in (repr(settings), str(settings), repr(settings.speechkit)):
        assert "SECRET" not in shown


def test_missing_file_is_one_clear_error(tmp_path):
    path = tmp_path / "absent.toml"

    with pytest.raises(ConfigError) as info:
        load_settings(path, ENV)

    assert info.value.errors == ["cannot read the file: No such file or directory"]
    assert str(path) in str(info.value)


def test_syntax_error_gives_the_line_number(tmp_path):
    path = write(tmp_path, '[voice]\nspeed = 1.0\nvoice = "alena\n')

    with pytest.raises(ConfigError) as info:
        load_settings(path, ENV)

    (error,) = info.value.errors
    assert error.startswith("TOML syntax error:")
    assert "line 3" in error
    assert str(path) in str(info.value)


def test_example_config_loads_and_matches_the_defaults():
    settings = load_settings(EXAMPLE, ENV)

    assert settings.speechkit == SpeechKitSettings()
    assert settings.voice == VoiceSettings()
    assert settings.audio == AudioSettings()
    assert settings.control == load_settings(None, ENV).control
    assert settings.local == LocalSettings()


def test_example_config_documents_every_key():
    text = EXAMPLE.read_text(encoding="utf-8")
    sections = {
        "speechkit": SpeechKitSettings,
        "voice": VoiceSettings,
        "audio": AudioSettings,
        "control": ControlSettings,
        "local": LocalSettings,
    }
    keys = {f.name for cls in sections.values() for f in dataclasses.fields(cls)}
    keys |= {"api_key_file", "iam_token_file", "service_account_key_file"}
    keys -= {"voices"}  # a table of its own, [local.voices]
    keys -= {"service_account_key"}  # read from service_account_key_file

    for section in [*sections, "local.voices"]:
        assert f"[{section}]" in text, section
    for key in keys:
        assert f"\n{key} = " in text or f"\n# {key} = " in text, key


def test_socket_defaults_to_xdg_runtime_dir():
    settings = load_settings(None, {"XDG_RUNTIME_DIR": "/run/user/4242"})

    assert settings.control.socket == Path("/run/user/4242/speechkit-player.sock")


@pytest.mark.parametrize("environ", [{}, {"XDG_RUNTIME_DIR": ""}])
def test_socket_falls_back_to_tmp_without_xdg_runtime_dir(environ):
    settings = load_settings(None, environ)

    assert settings.control.socket == Path(f"/tmp/speechkit-player-{os.getuid()}.sock")


def test_socket_expands_home(tmp_path):
    path = write(tmp_path, '[control]\nsocket = "~/sock/player.sock"\n')

    settings = load_settings(path, {"HOME": "/home/someone"})

    assert settings.control.socket == Path("/home/someone/sock/player.sock")


def test_absolute_socket_is_kept(tmp_path):
    path = write(tmp_path, '[control]\nsocket = "/run/speechkit/player.sock"\n')

    assert load_settings(path, ENV).control.socket == Path("/run/speechkit/player.sock")


@pytest.mark.parametrize(("value", "markup"), [("plain", "plain"), ("tts", "tts"), ("TTS", "tts")])
def test_text_markup_may_be_plain_or_tts(tmp_path, value, markup):
    settings = load_settings(write(tmp_path, f'[text]\nmarkup = "{value}"\n'), ENV)

    assert settings.text == TextSettings(markup=markup)


def test_text_markup_defaults_to_plain_in_the_example_too():
    assert load_settings(None, ENV).text == TextSettings(markup="plain")
    assert load_settings(EXAMPLE, ENV).text == TextSettings()
    assert "\n[text]\n" in EXAMPLE.read_text(encoding="utf-8")
    assert '\nmarkup = "plain"\n' in EXAMPLE.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('markup = "markdown"', 'text.markup: expected "plain" or "tts", found "markdown"'),
        ("markup = true", "text.markup: expected a string, found a boolean"),
        ('markpu = "tts"', 'unknown key [text] "markpu"; did you mean "markup"?'),
    ],
)
def test_text_errors_name_the_key_and_the_choices(tmp_path, text, error):
    assert errors_of(tmp_path, f"[text]\n{text}\n") == [error]


def test_text_errors_come_with_the_others(tmp_path):
    errors = errors_of(tmp_path, '[voice]\nspeed = 9\n[text]\nmarkup = "ssml"\n')

    assert errors == [
        "voice.speed: 9 is out of range [0.1, 3]",
        'text.markup: expected "plain" or "tts", found "ssml"',
    ]
