"""What the kiosk says and when: the sentences (the screen's own words), the tones a listener
tells apart, keeping quiet about what was just said, quiet hours, and the [sound] settings."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest

from kiosk.config import Config, ConfigError, SoundSection, parse_text
from kiosk.display import texts
from kiosk.display.state import ScreenState
from kiosk.results import Reason
from kiosk.sound import tones
from kiosk.sound.player import Clip, Tone
from kiosk.sound.prompts import REPEAT_S, cue_for, prompt_keys, sentence
from kiosk.sound.quiet import QuietHours
from kiosk.sound.recording import bursts, dominant_frequency
from kiosk.sound.voice import Voice


# --- the sentences -------------------------------------------------------------------------------

@pytest.mark.parametrize("reason", list(Reason))
@pytest.mark.parametrize("language", ["zh", "en"])
def test_each_refusal_reason_is_spoken_in_the_screens_own_words(reason, language):
    said = sentence(str(reason), language)
    for line in texts.lines(str(reason), language):
        assert line.rstrip("。.") in said
    cue = cue_for(ScreenState(kind="refuse", reasons=(str(reason),)))
    assert cue is not None and cue.verdict and cue.tone == "refuse" and cue.prompts == (str(reason),)


def test_what_each_page_says():
    assert sentence("prompt_code", "en") == "Please show your code."
    assert sentence("prompt_code", "zh") == "请出示健康码。"
    assert sentence("prompt_wrist", "en") == "Hold your wrist to the sensor."
    assert sentence("hold_still", "zh") == "请保持不动。"
    assert "measuring a second time" in sentence("measuring_again", "en")
    assert sentence("pass", "en") == "Please go ahead."
    # An all-capitals headline is said as words, not spelt.
    assert sentence("out_of_service", "en") == "Out of service. Please see staff."
    assert set(prompt_keys()) >= {"prompt_code", "prompt_wrist", "hold_still", "measuring_again", "pass",
                                   "out_of_service", *map(str, Reason)}


def test_quiet_pages_and_a_refusal_with_several_reasons():
    for kind in ("idle", "measuring", "family_keypad"):
        assert cue_for(ScreenState(kind=kind)) is None
    cue = cue_for(ScreenState(kind="refuse", reasons=("fever", "yellow_code")))
    assert cue.prompts == ("fever", "yellow_code")
    # A reason this version has no words for still refuses out loud.
    assert cue_for(ScreenState(kind="refuse", reasons=("from_the_future",))).prompts == ("refuse",)
    assert cue_for(ScreenState(kind="out_of_service", detail="thermometer")).tone == "attention"


# --- the tones -----------------------------------------------------------------------------------

def _notes(name: str) -> list[float]:
    signal = tones.samples(name).astype(np.float64) / 32768
    return [dominant_frequency(signal[start:end], tones.RATE)
            for start, end in bursts(signal, tones.RATE, threshold=0.02, gap_s=0.01)]


def test_pass_rises_high_and_refuse_falls_low():
    passing, refusing = _notes("pass"), _notes("refuse")
    assert len(passing) == 2 and len(refusing) == 2
    assert passing[1] > passing[0] and refusing[1] < refusing[0]
    # Far apart in pitch: the lowest PASS note is more than an octave above the highest REFUSE one.
    assert min(passing) > 1.5 * max(refusing)


def test_tones_are_loud_enough_and_never_clip():
    for name in tones.names():
        signal = tones.samples(name)
        peak = np.abs(signal.astype(np.int32)).max()
        assert 0.2 * 32767 < peak < 32767
        assert abs(int(signal[0])) < 200 and abs(int(signal[-1])) < 200  # faded in and out: no click
        assert tones.wav_bytes(name)[:4] == b"RIFF"


# --- what is said, and what is not ---------------------------------------------------------------

class Listener:
    """The voice's output (what it hands the player), and the clock and local time it sees."""

    def __init__(self, **sound):
        self.said = []
        self.now = 0.0
        self.local = datetime(2026, 11, 30, 12, 0).astimezone()
        self.config = Config(sound=SoundSection(**sound))
        self.language = "both"
        self.voice = Voice(self.said.append, lambda: (self.config.sound, self.language),
                           localnow=lambda: self.local, clock=lambda: self.now)

    def show(self, state: ScreenState, after_s: float = 0.5):
        self.now += after_s
        self.voice(state)


def test_the_same_prompt_is_not_repeated_within_a_few_seconds_but_a_verdict_always_plays():
    ear = Listener()
    ear.show(ScreenState(kind="prompt_code"))
    ear.show(ScreenState(kind="measuring"))
    ear.show(ScreenState(kind="prompt_code"))  # back again half a second later: not said twice
    ear.show(ScreenState(kind="prompt_code", temperature_c=36.6))  # the same page with a detail: not new
    ear.show(ScreenState(kind="idle"), after_s=REPEAT_S)
    ear.show(ScreenState(kind="prompt_code"))  # a while later: said again
    assert [u.label for u in ear.said] == ["prompt_code", "prompt_code"]
    ear.said.clear()
    for _ in range(2):
        ear.show(ScreenState(kind="pass", temperature_c=36.6))
        ear.show(ScreenState(kind="idle"))
    ear.show(ScreenState(kind="refuse", reasons=("fever",)))
    ear.show(ScreenState(kind="refuse", reasons=("fever",)))  # the same page shown again: once
    assert [u.label for u in ear.said] == ["pass", "pass", "refuse:fever"]
    assert all(u.verdict for u in ear.said)


def test_a_hint_is_said_when_it_appears_and_not_again_within_a_few_seconds():
    ear = Listener()
    ear.language = "en"
    ear.show(ScreenState(kind="idle"))
    ear.show(ScreenState(kind="idle", hint="closer"))  # the start page is silent, its hint is not
    ear.show(ScreenState(kind="idle"))
    ear.show(ScreenState(kind="idle", hint="closer"))  # the phone moving in and out: said once
    ear.show(ScreenState(kind="measuring", hint="closer"))  # the same hint on the next page: not again
    ear.show(ScreenState(kind="measuring", code_read=True, progress=0.4))  # the bar moving: silent
    ear.show(ScreenState(kind="prompt_wrist", code_read=True, hint="wrist_closer"))  # page and hint at once
    assert [u.label for u in ear.said] == ["hint_closer", "prompt_wrist+hint_wrist_closer"]
    assert ear.said[-1].parts == (Clip("prompt_wrist", "en"), Clip("hint_wrist_closer", "en"))
    ear.show(ScreenState(kind="idle", hint="closer"), after_s=REPEAT_S)
    assert ear.said[-1].label == "hint_closer"  # a while later: said again
    assert sentence("hint_closer", "en") == "Move the phone closer."
    assert sentence("hint_wrist_closer", "zh") == "请把手腕再靠近测温区一些。"


def test_both_languages_say_every_chinese_sentence_then_every_english_one():
    ear = Listener()
    ear.show(ScreenState(kind="refuse", reasons=("fever", "red_code")))
    assert ear.said[0].parts == (Tone("refuse"), Clip("fever", "zh"), Clip("red_code", "zh"),
                                 Clip("fever", "en"), Clip("red_code", "en"))
    ear.language = "en"
    ear.show(ScreenState(kind="idle"))
    ear.show(ScreenState(kind="pass"))
    assert ear.said[-1].parts == (Tone("pass"), Clip("pass", "en"))


def test_settings_apply_at_the_next_prompt():
    ear = Listener(voice=False, volume=0.5)
    ear.show(ScreenState(kind="pass"))
    ear.show(ScreenState(kind="prompt_wrist"))  # a prompt is only words: nothing to play
    assert [(u.parts, u.volume) for u in ear.said] == [((Tone("pass"),), 0.5)]
    ear.config = Config(sound=SoundSection(enabled=False))
    ear.show(ScreenState(kind="refuse", reasons=("fever",)))
    assert len(ear.said) == 1


@pytest.mark.parametrize("hour, quiet", [(23, True), (3, True), (6, True), (7, False), (12, False), (21, False)])
def test_quiet_hours_are_quieter_and_say_no_words(hour, quiet):
    ear = Listener(quiet_hours="22:00-07:00", volume=0.8, quiet_volume=0.2)
    ear.local = datetime(2026, 11, 30, hour, 30).astimezone()
    ear.show(ScreenState(kind="refuse", reasons=("fever",)))
    said = ear.said[0]
    if quiet:
        assert (said.parts, said.volume) == ((Tone("refuse"),), 0.2)
    else:
        assert said.volume == 0.8 and Clip("fever", "zh") in said.parts


def test_quiet_hours_may_keep_the_voice_and_are_never_louder_than_the_volume():
    ear = Listener(quiet_hours="22:00-07:00", volume=0.1, quiet_volume=0.3, quiet_voice=True)
    ear.local = datetime(2026, 11, 30, 23, 0, tzinfo=timezone.utc)
    ear.show(ScreenState(kind="pass"))
    assert ear.said[0].volume == 0.1 and Clip("pass", "en") in ear.said[0].parts


def test_quiet_hours_within_one_day_and_across_midnight():
    night = QuietHours.parse("22:00-07:00")
    assert datetime(2026, 1, 1, 22, 0).time() in night and datetime(2026, 1, 1, 6, 59).time() in night
    assert datetime(2026, 1, 1, 7, 0).time() not in night
    lunch = QuietHours.parse("12:30-13:30")
    assert datetime(2026, 1, 1, 13, 0).time() in lunch and datetime(2026, 1, 1, 14, 0).time() not in lunch
    assert QuietHours.parse("") is None


def test_a_broken_listener_never_reaches_the_screen_loop(caplog):
    def broken():
        raise RuntimeError("settings gone")

    voice = Voice(lambda utterance: None, broken)
    voice(ScreenState(kind="pass"))
    voice(ScreenState(kind="refuse", reasons=("fever",)))
    assert sum("could not pick what to say" in r.getMessage() for r in caplog.records) == 1


# --- the settings ------------------------------------------------------------------------------

def test_sound_settings_and_their_errors():
    config = parse_text('[sound]\nvolume = 0.5\nquiet_hours = "23:15-06:00"\n')
    assert config.sound.volume == 0.5 and config.sound.enabled and config.sound.voice
    for text, problem in [
        ('[sound]\nquiet_hours = "10pm-7am"', "sound.quiet_hours: must be \"HH:MM-HH:MM\""),
        ('[sound]\nquiet_hours = "07:00-07:00"', "sound.quiet_hours: must not start and end at the same time"),
        ("[sound]\nvolume = 1.5", "sound.volume: Input should be less than or equal to 1"),
        ('[sound]\nzh_voice = "cmn; rm -rf /"', "sound.zh_voice: String should match pattern"),
        ("[sound]\nloud = true", "sound.loud: unknown key"),
    ]:
        with pytest.raises(ConfigError) as error:
            parse_text(text)
        assert any(p.startswith(problem) for p in error.value.problems), error.value.problems
