"""setup.sh and the sound: espeak-ng and alsa-utils on the Pi, the kiosk user in the audio group,
the spoken prompts rendered as the kiosk user (again only when something changed), the sound card
reported; espeak-ng on the development path and the Pi's stack (the tests render with it)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from test_setup import SETUP, FakePi, needs_apt_python, needs_root  # noqa: F401 (the Pi's stand-ins)

pytestmark = [pytest.mark.slow]

CARDS = """\
 0 [Headphones     ]: bcm2835_headpho - bcm2835 Headphones
                      bcm2835 Headphones
 1 [vc4hdmi0       ]: vc4-hdmi - vc4-hdmi-0
                      vc4-hdmi-0
"""


def test_the_pi_path_installs_the_voice_and_renders_the_prompts_as_the_kiosk_user(tmp_path: Path) -> None:
    pi = FakePi(tmp_path)
    result = pi.run("--dry-run")
    assert result.returncode == 0, result.stderr
    apt_line = next(line for line in result.stdout.splitlines() if "would run:" in line and "apt-get install" in line)
    assert {"espeak-ng", "alsa-utils"} <= set(apt_line.split())
    assert "audio" in next(line for line in result.stdout.splitlines() if "usermod -aG" in line)
    assert (f"would run: runuser -u kiosk -- {pi.venv}/bin/kiosk sound render --config {pi.root}/etc/kiosk/config.toml"
            in result.stdout)
    # No sound card: said, and nothing else is different (a kiosk runs silently without one).
    assert "no sound card found" in result.stderr


def test_the_sound_card_is_reported(tmp_path: Path) -> None:
    pi = FakePi(tmp_path)
    (pi.root / "proc/asound").mkdir(parents=True)
    (pi.root / "proc/asound/cards").write_text(CARDS)
    result = pi.run("--dry-run")
    assert "sound output: card 0, Headphones (bcm2835_headpho - bcm2835 Headphones)" in result.stdout
    assert "no sound card" not in result.stderr


@needs_root
@needs_apt_python
def test_the_prompts_are_rendered_when_something_changed_and_only_then(tmp_path: Path) -> None:
    pi = FakePi(tmp_path)
    assert pi.run().returncode == 0
    config = f"{pi.root}/etc/kiosk/config.toml"
    assert f"runuser -u kiosk -- {pi.venv}/bin/kiosk sound render --check --config {config}" in pi.calls()
    # A kiosk whose clips are out of date (a new program with new words, another voice).
    kiosk = pi.venv / "bin/kiosk"
    kiosk.write_text('#!/bin/bash\necho "kiosk $*" >>"$STUB_LOG"\n'
                     '[ "$1 $2 ${3:-}" = "sound render --check" ] && exit 1\n'
                     '[ "$1" = check-config ] && exec "$REAL_KIOSK" "$@"\n'
                     '[ "$1" = selftest ] && echo "selftest: every part passed"\nexit 0\n')
    again = pi.run()
    assert again.returncode == 0, again.stderr
    assert "rendering the spoken prompts" in again.stdout
    assert f"kiosk sound render --config {config}" in pi.calls()


def test_the_development_path_and_the_pis_stack_install_espeak_ng() -> None:
    for mode in ("--dev", "--pi-stack"):
        result = subprocess.run([str(SETUP), "--dry-run", mode], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        packages = next(line for line in result.stdout.splitlines() if "system packages" in line)
        assert "espeak-ng" in packages, packages
