"""Config files a maintainer can get wrong in ways that used to slip through: a secret pasted into the
wrong setting, a token sent in the clear, and values that validate but then crash the kiosk."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kiosk import config
from kiosk.config import ConfigError, load
from kiosk.reload import ConfigWatcher
from kiosk.status import collect, render
from kiosk.sync.store import EventStore

ROOT = Path(__file__).resolve().parent.parent
NUMERIC_TOKEN = "5820193746150372"


def kiosk(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kiosk", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)


def pasted_private_key() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


def secret_pieces(pem: str) -> list[str]:
    """Every 8-character run of the key's base64 body: none may show up anywhere."""
    body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    return [body[i:i + 8] for i in range(0, len(body) - 8)] + [NUMERIC_TOKEN]


def leaked(text: str, pieces: list[str]) -> list[str]:
    return [piece for piece in pieces if piece in text]


def secret_config(folder: Path, pem: str) -> Path:
    path = folder / "config.toml"
    path.write_text(
        f'[kiosk]\ndata_dir = "{folder / "data"}"\n'
        f'[trust]\noperator_key = """\n{pem}"""\n'
        f'[platform]\ntoken = {NUMERIC_TOKEN}\n'
        f'[upstream]\ntoken = {NUMERIC_TOKEN}\n'
        f'[codes]\nplatforms = [{{ name = "gd", prefix = "GD:", url = "https://gd.example", '
        f'token = {NUMERIC_TOKEN} }}]\n',
        encoding="utf-8")
    return path


# --- secrets are never echoed --------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.e2e
def test_check_config_names_the_keys_but_never_echoes_a_pasted_private_key_or_a_numeric_token(tmp_path):
    pem = pasted_private_key()
    result = kiosk("check-config", str(secret_config(tmp_path, pem)))
    assert result.returncode == 2
    for key in ("trust.operator_key", "platform.token", "upstream.token", "codes.platforms.0.token"):
        assert key in result.stderr
    assert "Traceback" not in result.stderr
    assert leaked(result.stdout + result.stderr, secret_pieces(pem)) == []


@pytest.mark.slow
@pytest.mark.e2e
def test_a_refused_reload_logs_and_shows_the_key_but_not_the_secret(tmp_path, caplog):
    good = tmp_path / "config.toml"
    good.write_text(f'[kiosk]\ndata_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    cfg = load(good)
    watcher = ConfigWatcher(good, cfg, lambda _: None)
    pem = pasted_private_key()
    secret_config(tmp_path, pem)
    assert not watcher.check(forced=True)
    assert "trust.operator_key" in watcher.error and "platform.token" in watcher.error
    assert leaked(caplog.text, secret_pieces(pem)) == []
    # what `kiosk status` shows of the refused edit (the daemon saves watcher.error)
    good.write_text(f'[kiosk]\ndata_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    with EventStore(cfg.store_path) as store:
        store.save_status({"config_error": watcher.error})
    shown = kiosk("status", "--config", str(good))
    as_json = kiosk("status", "--config", str(good), "--json")
    assert shown.returncode == 0, shown.stderr
    assert "trust.operator_key" in shown.stdout
    for output in (shown.stdout, shown.stderr, as_json.stdout, render(collect(cfg))):
        assert leaked(output, secret_pieces(pem)) == []


@pytest.mark.parametrize("setting", [
    "[platform]\ntoken = {v}\n",
    "[upstream]\ntoken = {v}\n",
    "[trust]\noperator_key = {v}\n",
    "[codes]\nplatforms = [{{ name = \"gd\", prefix = \"GD:\", url = \"https://gd.example\", token = {v} }}]\n",
])
@pytest.mark.parametrize("value", ["12345678987654321", "[\"0123456789abcdef\"]", "3.14159265358979"])
def test_no_wrong_value_of_a_secret_setting_is_echoed(setting, value):
    # Each value has the wrong type for a secret setting: refused, and not shown in the refusal.
    with pytest.raises(ConfigError) as refused:
        config.parse_text(setting.format(v=value))
    for secret in ("12345678987654321", "0123456789abcdef", "14159265358979"):
        assert secret not in str(refused.value)


def test_a_token_with_a_line_break_is_refused_without_echoing_it():
    with pytest.raises(ConfigError) as caught:
        config.parse_text('[platform]\ntoken = "abcdef0123456789\\n"\n')
    assert caught.value.problems[0].startswith("platform.token:")
    assert "abcdef0123456789" not in str(caught.value)


def test_other_settings_still_show_the_value_they_got():
    with pytest.raises(ConfigError) as caught:
        config.parse_text("[thermometer]\nfever_c = 73\n")
    assert "(got 73)" in caught.value.problems[0]


# --- tokens only over https or to this device ----------------------------------------------------


@pytest.mark.parametrize(("text", "key"), [
    ('[platform]\nurl = "http://hc.example.org/api"\ntoken = "t0k"\n', "platform.token"),
    ('[upstream]\nurl = "http://10.0.0.5:8470"\ntoken = "t0k"\n', "upstream.token"),
    ('[upstream]\nurl = "http://localhost.example.org"\ntoken = "t0k"\n', "upstream.token"),
    ('[codes]\nplatforms = [{ name = "gd", prefix = "GD:", url = "http://[2001:db8::1]/x", token = "t0k" }]\n',
     "codes.platforms.0.token"),
])
def test_a_token_over_plain_http_to_another_host_is_refused(text, key):
    with pytest.raises(ConfigError) as caught:
        config.parse_text(text)
    assert len(caught.value.problems) == 1
    problem = caught.value.problems[0]
    assert problem.startswith(f"{key}:") and "https://" in problem and "t0k" not in problem


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8470", "http://127.3.4.5/x", "http://[::1]:8470/p", "http://localhost:8470",
    "http://LOCALHOST", "https://collector.example.org", "https://10.0.0.5:8443/x",
])
def test_a_token_over_https_or_to_this_device_is_fine(url):
    loaded = config.parse_text(f'[platform]\nurl = "{url}"\ntoken = "t"\n[upstream]\nurl = "{url}"\ntoken = "t"\n'
                               f'[codes]\nplatforms = [{{ name = "gd", prefix = "GD:", url = "{url}", '
                               'token = "t" }]\n')
    assert loaded.platform.token.get_secret_value() == "t"


def test_plain_http_without_a_token_is_still_allowed():
    assert config.parse_text('[upstream]\nurl = "http://collector.example.org"\n').upstream.url.startswith("http://")


# --- values that validate and then crash ---------------------------------------------------------


def font_file(tmp_path: Path) -> Path:
    path = tmp_path / "notes.ttf"
    path.write_text("these are notes, not a font\n")
    return path


def bad_configs(tmp_path: Path) -> dict[str, tuple[str, str]]:
    """name: (config text, the key its one line must name)."""
    return {
        "data_dir is a file": ('[kiosk]\ndata_dir = "/etc/passwd"\n', "kiosk.data_dir"),
        "data_dir under a file": ('[kiosk]\ndata_dir = "/etc/passwd/kiosk"\n', "kiosk.data_dir"),
        "data_dir under /proc": ('[kiosk]\ndata_dir = "/proc/kiosk"\n', "kiosk.data_dir"),
        "data_dir under /sys": ('[kiosk]\ndata_dir = "/sys/kernel/kiosk"\n', "kiosk.data_dir"),
        "data_dir with NUL": (f'[kiosk]\ndata_dir = "{tmp_path}/a\\u0000b"\n', "kiosk.data_dir"),
        "font with NUL": ('[screen]\nfont = "/usr/share/fonts/a\\u0000.ttf"\n', "screen.font"),
        "font not a font": (f'[screen]\nfont = "{font_file(tmp_path)}"\n', "screen.font"),
        "font a device": ('[screen]\nfont = "/dev/zero"\n', "screen.font"),
        "font a folder": (f'[screen]\nfont = "{tmp_path}"\n', "screen.font"),
        "camera path with NUL": ('[camera]\npath = "/tmp/a\\u0000"\n', "camera.path"),
        "ca_bundle with NUL": ('[upstream]\nca_bundle = "/tmp/ca\\u0000.pem"\n', "upstream.ca_bundle"),
        "arrays 5000 deep": ("[upstream]\nurgent_reasons = " + "[" * 5000 + "]" * 5000 + "\n",
                             "upstream.urgent_reasons"),
        "tables 5000 deep": ("[kiosk]\nid = " + "{ a = " * 5000 + "1" + " }" * 5000 + "\n", "kiosk.id"),
    }


def test_each_bad_value_is_one_problem_naming_its_key(tmp_path):
    for name, (text, key) in bad_configs(tmp_path).items():
        with pytest.raises(ConfigError) as caught:
            config.parse_text(text)
        assert len(caught.value.problems) == 1, name
        assert caught.value.problems[0].startswith(f"{key}:"), (name, caught.value.problems)


@pytest.mark.slow
@pytest.mark.e2e
def test_check_config_exits_2_with_one_line_for_each_bad_value(tmp_path):
    for index, (name, (text, key)) in enumerate(bad_configs(tmp_path).items()):
        path = tmp_path / f"bad{index}.toml"
        path.write_text(text, encoding="utf-8")
        result = kiosk("check-config", str(path))
        assert result.returncode == 2, (name, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr, name
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 2 and lines[1].strip().startswith(f"{key}:"), (name, lines)


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.parametrize("command", ["run", "demo"])
def test_run_and_demo_stop_with_one_line_naming_the_key(tmp_path, command):
    cases = bad_configs(tmp_path)
    for name in ("data_dir is a file", "data_dir under /proc", "data_dir with NUL", "font not a font",
                 "arrays 5000 deep"):
        text, key = cases[name]
        path = tmp_path / "bad.toml"
        path.write_text(text, encoding="utf-8")
        args = ["run", "--config", str(path)] if command == "run" else ["demo", "--headless", "--visitors", "1",
                                                                       "--config", str(path)]
        result = kiosk(*args)
        assert result.returncode == 2, (name, result.stderr[-2000:])
        assert "Traceback" not in result.stderr, name
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and key in lines[0], (name, lines)


@pytest.mark.slow
@pytest.mark.e2e
def test_a_font_that_turns_into_a_non_font_after_the_check_is_one_line(tmp_path, monkeypatch):
    """The file is checked again when the screen opens (it may have changed since check-config)."""
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    from kiosk.display import fonts
    from kiosk.errors import KioskError

    path = font_file(tmp_path)
    with pytest.raises(KioskError, match=r"^screen\.font: "):
        fonts.FontBook.for_config(str(path))


@pytest.mark.slow
@pytest.mark.e2e
def test_the_data_dir_a_maintainer_points_at_may_not_exist_yet(tmp_path):
    loaded = config.parse_text(f'[kiosk]\ndata_dir = "{tmp_path}/new/kiosk"\n')
    assert loaded.kiosk.data_dir == tmp_path / "new" / "kiosk"


@pytest.mark.slow
@pytest.mark.e2e
def test_moderately_nested_values_still_get_the_ordinary_error():
    with pytest.raises(ConfigError) as caught:
        config.parse_text("[kiosk]\nid = " + "[" * 50 + "]" * 50 + "\n")
    assert re.match(r"kiosk\.id: Input should be a valid string", caught.value.problems[0])
