from player.speech.markup import clean
from player.ssip.voices import (
    Voice,
    char_text,
    for_language,
    key_text,
    listing,
    offered,
    ssml_text,
)


def test_every_voice_line_has_three_tab_separated_fields():
    lines = listing(offered(["kiosk-voice"]))
    assert all(len(line.split("\t")) == 3 for line in lines)
    assert "marina\tru-RU\tnone" in lines
    assert lines[-1] == "kiosk-voice\tnone\tnone"


def test_a_language_picks_a_voice_that_speaks_it_unless_the_current_one_does():
    voices = [Voice("marina", "ru-RU"), Voice("john", "en-US"), Voice("lea", "de-DE")]
    assert for_language(voices, "en", "marina") == "john"
    assert for_language(voices, "ru", "marina") == "marina"
    assert for_language(voices, "de-DE", "") == "lea"
    assert for_language(voices, "C", "marina") == "marina"  # spd-say's default: no wish


def test_chars_and_keys_are_spoken_by_name_where_alone_they_say_nothing():
    assert char_text("a") == "a"
    assert char_text("space") == "space"
    assert char_text(",") == "comma"
    assert key_text("shift_a") == "shift a"
    assert key_text("kp-enter") == "kp enter"
    assert key_text("double-quote") == "double quote"


def test_ssml_keeps_the_words_and_reads_entities():
    text, marks = ssml_text("<speak>Fish &amp; chips<break time='1s'/>now</speak>")
    assert " ".join(text.split()) == "Fish & chips now"
    assert marks == []


def test_ssml_marks_count_the_characters_before_them():
    markup = '<speak><mark name="0"/>Hello <mark name="m1"/>big world.<mark name="end"/></speak>'
    text, marks = ssml_text(markup)
    assert " ".join(text.split()) == "Hello big world."
    assert marks == [(0, "0"), (5, "m1"), (14, "end")]


def test_a_sign_alone_is_spoken_by_its_unicode_name():
    assert char_text("!") == "exclamation mark"
    assert char_text("@") == "commercial at"


def test_marks_count_the_text_as_the_service_is_sent_it():
    markup = "<speak>C++ is fun. <mark name='m'/>Go on.</speak>"
    _, raw = ssml_text(markup)
    _, sent = ssml_text(markup, lambda text: clean(text, "plain"))
    assert raw == [(9, "m")]  # "C++isfun."
    assert sent == [(15, "m")]  # "Cplusplusisfun.": what the service echoes back
