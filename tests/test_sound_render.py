"""`kiosk sound render`: every spoken prompt in both languages, rendered by the real espeak-ng; only
what changed is rendered again; the running kiosk never speaks a clip of an old text or voice."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from kiosk.config import SoundSection
from kiosk.sound.clips import MANIFEST, ClipLibrary, render
from kiosk.sound.prompts import LANGUAGES, prompt_keys, sentence
from kiosk.sound.recording import bursts, read_wav

KIOSK = Path(sys.executable).with_name("kiosk")

pytestmark = [pytest.mark.slow, pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                                  reason="espeak-ng is missing (./setup.sh installs it as root; CI has it)")]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> tuple[Path, object]:
    folder = tmp_path_factory.mktemp("data") / "sound"
    return folder, render(SoundSection(), folder)


def mtimes(folder: Path) -> dict[str, int]:
    return {path.name: path.stat().st_mtime_ns for path in folder.iterdir()}


def test_every_prompt_is_spoken_in_both_languages(rendered):
    folder, report = rendered
    names = {f"{key}.{language}.wav" for key in prompt_keys() for language in LANGUAGES}
    assert set(report.rendered) == names and not report.failed
    for name in names:
        signal, rate = read_wav(folder / name)
        with wave.open(str(folder / name)) as clip:
            assert (clip.getframerate(), clip.getnchannels(), clip.getsampwidth()) == (22050, 1, 2)
        # Something is said: at least half a second of sound, not silence or a click.
        spoken = sum(end - start for start, end in bursts(signal, rate))
        assert spoken > 0.5 * rate, name
    manifest = json.loads((folder / MANIFEST).read_text())["clips"]
    assert manifest["fever.zh.wav"]["text"] == sentence("fever", "zh")
    assert manifest["fever.en.wav"]["voice"] == "en" and manifest["fever.zh.wav"]["voice"] == "cmn"


def test_chinese_and_english_clips_differ_and_each_prompt_is_its_own(rendered):
    folder, _ = rendered
    zh, _ = read_wav(folder / "fever.zh.wav")
    en, _ = read_wav(folder / "fever.en.wav")
    red, _ = read_wav(folder / "red_code.en.wav")
    assert len(zh) != len(en) or not np.array_equal(zh, en)
    assert len(red) != len(en) or not np.array_equal(red, en)


def test_the_clips_are_the_kiosks_alone(rendered):
    folder, _ = rendered
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert {stat.S_IMODE(path.stat().st_mode) for path in folder.iterdir()} == {0o600}


def test_a_second_render_changes_nothing(tmp_path):
    folder = tmp_path / "sound"
    render(SoundSection(), folder)
    before = mtimes(folder)
    again = render(SoundSection(), folder)
    assert again.rendered == [] and again.removed == [] and len(again.unchanged) == len(before) - 1  # - manifest
    assert {name: t for name, t in mtimes(folder).items() if name != MANIFEST} == \
        {name: t for name, t in before.items() if name != MANIFEST}
    assert render(SoundSection(), folder, check=True).up_to_date


def test_another_voice_a_lost_clip_and_a_leftover_are_set_right(tmp_path):
    folder = tmp_path / "sound"
    render(SoundSection(), folder)
    (folder / "hold_still.zh.wav").unlink()
    (folder / "retired_prompt.en.wav").write_bytes(b"RIFF")
    before = mtimes(folder)
    check = render(SoundSection(en_voice="en-us"), folder, check=True)
    assert not check.up_to_date and mtimes(folder) == before  # --check renders nothing
    report = render(SoundSection(en_voice="en-us"), folder)
    # Every English clip (the voice changed), the lost Chinese one, and nothing else.
    assert set(report.rendered) == {f"{key}.en.wav" for key in prompt_keys()} | {"hold_still.zh.wav"}
    assert report.removed == ["retired_prompt.en.wav"] and not (folder / "retired_prompt.en.wav").exists()
    after = mtimes(folder)
    assert after["fever.zh.wav"] == before["fever.zh.wav"]
    assert after["fever.en.wav"] != before["fever.en.wav"]


def test_a_voice_espeak_ng_does_not_have_is_named(tmp_path):
    report = render(SoundSection(zh_voice="nosuch"), tmp_path / "sound")
    assert set(report.failed) == {f"{key}.zh.wav" for key in prompt_keys()}
    assert "nosuch" in report.failed["fever.zh.wav"]
    assert len(report.rendered) == len(prompt_keys())  # the English ones are fine
    library = ClipLibrary(tmp_path / "sound", SoundSection(zh_voice="nosuch"))
    assert library.path("fever", "en") is not None and library.path("fever", "zh") is None
    assert "not spoken until `kiosk sound render`" in library.problem


def test_the_kiosk_never_speaks_a_clip_of_an_old_text_or_another_voice(tmp_path):
    folder = tmp_path / "sound"
    render(SoundSection(), folder)
    assert ClipLibrary(folder, SoundSection()).problem is None
    assert len(ClipLibrary(folder, SoundSection())) == 2 * len(prompt_keys())
    # The voice was changed in the config, and not rendered yet.
    assert ClipLibrary(folder, SoundSection(en_voice="en-us")).path("fever", "en") is None
    # The screen's words changed since the render (as after an update of the program).
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["clips"]["fever.en.wav"]["text"] = "Fever."
    (folder / MANIFEST).write_text(json.dumps(manifest))
    library = ClipLibrary(folder, SoundSection())
    assert library.path("fever", "en") is None and library.path("fever", "zh") is not None
    assert "fever.en.wav" in library.problem
    assert ClipLibrary(tmp_path / "nowhere", SoundSection()).problem.startswith("no spoken prompts in")


def test_the_command(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(f'[kiosk]\ndata_dir = "{tmp_path / "data"}"\n')
    env = {**os.environ, "LANG": "C", "LC_ALL": "C"}  # as under systemd: the text must still be UTF-8

    def kiosk(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(KIOSK), "sound", "render", "--config", str(config), *args],
                              capture_output=True, text=True, timeout=300, env=env)

    assert kiosk("--check").returncode == 1
    first = kiosk()
    assert first.returncode == 0, first.stderr
    assert f"{2 * len(prompt_keys())} rendered, 0 unchanged" in first.stdout
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
    checked = kiosk("--check")
    assert checked.returncode == 0 and "up to date" in checked.stdout
    zh, rate = read_wav(tmp_path / "data/sound/fever.zh.wav")
    assert sum(end - start for start, end in bursts(zh, rate)) > 1.0 * rate  # Chinese read as Chinese
    config.write_text('[sound]\nvolume = 3\n')
    bad = kiosk()
    assert bad.returncode == 2 and "sound.volume" in bad.stderr
