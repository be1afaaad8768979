"""`VoiceChoice`: an utterance's own voice, rate, pitch and volume over the configured voice."""

import pytest

from player.config import VoiceSettings
from player.synthesis.interface import VoiceChoice

CONFIGURED = VoiceSettings(voice="marina", role="friendly")


def test_no_choice_is_the_configured_voice():
    assert VoiceChoice().applied(CONFIGURED) == CONFIGURED


@pytest.mark.parametrize(("rate", "speed"), [(100, 3.0), (50, 1.732), (-100, 0.333), (0, 1.0)])
def test_rate_is_geometric_around_the_configured_speed(rate, speed):
    assert VoiceChoice(rate=rate).applied(CONFIGURED).speed == speed


def test_rate_stays_within_speechkit_s_speeds():
    fast = VoiceSettings(speed=2.0)
    assert VoiceChoice(rate=100).applied(fast).speed == 3.0


def test_pitch_is_two_hertz_a_step():
    assert VoiceChoice(pitch=-50).applied(CONFIGURED).pitch_shift == -100.0
    assert VoiceChoice(pitch=100).applied(VoiceSettings(pitch_shift=950)).pitch_shift == 1000


def test_volume_lowers_the_loudness_target_of_either_normalisation():
    # 100 is speech-dispatcher's default and the configured loudness (here the service's).
    assert VoiceChoice(volume=100).applied(CONFIGURED).volume is None
    assert VoiceChoice(volume=80).applied(CONFIGURED).volume == -22.0
    assert VoiceChoice(volume=-100).applied(CONFIGURED).volume == -49.0
    assert VoiceChoice(volume=0).applied(VoiceSettings(volume=-12.0)).volume == -27.0
    peak = VoiceSettings(loudness="MAX_PEAK", volume=0.5)
    assert VoiceChoice(volume=100).applied(peak).volume == 0.5
    assert VoiceChoice(volume=0).applied(peak).volume == 0.25
    assert VoiceChoice(volume=-100).applied(peak).volume == 0.01


def test_another_voice_speaks_in_its_own_default_role_unless_one_is_asked():
    assert VoiceChoice(voice="john").applied(CONFIGURED) == VoiceSettings(voice="john")
    other = VoiceChoice(voice="alena", role="good").applied(CONFIGURED)
    assert (other.voice, other.role) == ("alena", "good")
    same = VoiceChoice(voice="marina").applied(CONFIGURED)
    assert same == CONFIGURED
