"""The config scheme: the shipped file is valid and commented, and every mistake names its key path."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk import config
from kiosk.config import Config, ConfigError, SHIPPED_CONFIG

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_config_is_valid_and_matches_defaults():
    loaded = config.load(SHIPPED_CONFIG)
    assert loaded == Config()


def test_every_shipped_setting_has_a_comment_above_it():
    lines = SHIPPED_CONFIG.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        if re.match(r"^[a-z_]+\s*=", line):
            above = lines[number - 1].strip()
            assert above.startswith("#") or re.match(r"^[a-z_]+\s*=", above), f"line {number + 1}: {line}"
    # every key of the scheme appears in the shipped file
    text = SHIPPED_CONFIG.read_text(encoding="utf-8")
    for section_name, section in Config.model_fields.items():
        assert f"[{section_name}]" in text
        for key in section.annotation.model_fields:
            assert re.search(rf"^{key}\s*=", text, re.M), f"{section_name}.{key} missing from config.toml"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[thermometer]\nfever_c = 73\n", "thermometer.fever_c: Input should be less than or equal to 42 (got 73)"),
        ("[thermometer]\nfever_c = \"hot\"\n", "thermometer.fever_c:"),
        ("[thermometr]\nfever_c = 37\n", "thermometr: unknown key"),
        ("[thermometer]\nfevr_c = 37\n", "thermometer.fevr_c: unknown key"),
        ("[lights]\nred_pin = 40\n", "lights.red_pin: Input should be less than or equal to 27 (got 40)"),
        ("[lights]\nred_pin = 17\n", "lights: green_pin, red_pin, buzzer_pin and relay_pin must differ"),
        ("[kiosk]\nlanguage = \"fr\"\n", "kiosk.language: Input should be 'zh', 'en' or 'both'"),
        ("[kiosk]\nid = \"gate 1\"\n", "kiosk.id: String should match pattern"),
        ("[kiosk]\nprompt_after_s = 30\nabandon_after_s = 10\n", "kiosk: abandon_after_s must be greater than prompt_after_s"),
        ("[platform]\nurl = \"ftp://x\"\n", "platform.url: must be an http:// or https:// URL"),
        ("[upstream]\nurl = \"https://gate:s3cret@collector.example\"\n", "upstream.url: must be an http:// or https:// URL"),
        ("[platform]\nfallback = \"pass\"\n", "platform.fallback: Input should be 'refuse' or 'out_of_service'"),
        ("[codes]\nplatforms = [{ name = \"gd\", url = \"http://x\" }]\n",
         "codes.platforms.0: give exactly one of prefix and pattern"),
        ("[codes]\nplatforms = [{ name = \"gd\", pattern = \"(\", url = \"http://x\" }]\n",
         "codes.platforms.0: pattern is not a regular expression"),
        ("[codes]\ndcc_recovered = \"blue\"\n", "codes.dcc_recovered: Input should be 'green', 'yellow' or 'red'"),
        ("[codes]\nreplay_window_s = -1\n", "codes.replay_window_s: Input should be greater than or equal to 0"),
        ("[trust]\noperator_key = \"not-a-key\"\n", "trust.operator_key: not a PEM or base64 DER public key"),
        ("[trust]\nstale = \"ignore\"\n", "trust.stale: Input should be 'refuse' or 'accept'"),
        ("[thermometer]\nsite = \"ear\"\n", "thermometer.site: Input should be 'wrist' or 'forehead'"),
        ("[thermometer]\nhold_still_after_s = 5\n", "thermometer: stable_window_s < hold_still_after_s < max_settle_s"),
        ("[thermometer]\nsample_hz = 5\n", "thermometer: stable_window_s * sample_hz must be at least 3"),
        ("[screen]\ntemperature_unit = \"K\"\n", "screen.temperature_unit: Input should be 'C' or 'F'"),
        ("[upstream\nurl = 1\n", "not valid TOML"),
        ("thermometer = 5\n", "thermometer: Input should be a valid dictionary"),
    ],
)
def test_errors_name_the_key_path(text, expected):
    with pytest.raises(ConfigError) as caught:
        config.parse_text(text, "test.toml")
    assert any(problem.startswith(expected) or expected in problem for problem in caught.value.problems), caught.value.problems


def test_a_password_in_a_url_is_refused_and_not_echoed():
    with pytest.raises(ConfigError) as caught:
        config.parse_text('[upstream]\nurl = "https://gate:s3cret@collector.example/x"\n')
    assert "s3cret" not in str(caught.value)


def test_all_problems_reported_at_once():
    with pytest.raises(ConfigError) as caught:
        config.parse_text("[thermometer]\nfever_c = 73\nfoo = 1\n[camera]\nfps = 0\n")
    assert len(caught.value.problems) == 3


def test_tokens_are_never_shown():
    loaded = config.parse_text('[upstream]\ntoken = "s3cret-token"\n[platform]\ntoken = "other-secret"\n')
    assert loaded.upstream.token.get_secret_value() == "s3cret-token"
    assert "s3cret-token" not in repr(loaded) and "other-secret" not in str(loaded)


def test_merged_overrides_keep_tokens_and_validate():
    base = config.parse_text('[upstream]\ntoken = "abc"\n')
    changed = config.merged(base, {"upstream": {"url": "http://127.0.0.1:9"}})
    assert changed.upstream.url == "http://127.0.0.1:9"
    assert changed.upstream.token.get_secret_value() == "abc"
    with pytest.raises(ConfigError):
        config.merged(base, {"thermometer": {"fever_c": 99}})


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "kiosk", *args], capture_output=True, text=True, cwd=ROOT, timeout=60)


@pytest.mark.slow
@pytest.mark.e2e
def test_check_config_command(tmp_path):
    good = run_cli("check-config", str(SHIPPED_CONFIG))
    assert good.returncode == 0, good.stderr
    bad_file = tmp_path / "bad.toml"
    bad_file.write_text("[thermometer]\nfever_c = 73\n[upstream]\ntoken = \"hunter2\"\nbogus = 1\n")
    bad = run_cli("check-config", str(bad_file))
    assert bad.returncode == 2
    assert "thermometer.fever_c" in bad.stderr and "upstream.bogus: unknown key" in bad.stderr
    assert "Traceback" not in bad.stderr and "hunter2" not in bad.stderr + bad.stdout
    missing = run_cli("check-config", str(tmp_path / "absent.toml"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr


@pytest.mark.slow
@pytest.mark.e2e
def test_daemon_refuses_bad_config_with_one_line(tmp_path):
    bad_file = tmp_path / "bad.toml"
    bad_file.write_text("[thermometer]\nfever_c = 73\n")
    result = run_cli("run", "--config", str(bad_file))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "thermometer.fever_c" in result.stderr
