"""The fleet playbook in deploy/: it passes `ansible-playbook --syntax-check`, and run for real
against this machine (connection "local", two inventory hosts with their own config paths) it
replaces a good config and reloads, while a bad one is rejected by the real `kiosk check-config`
and leaves the old file and the running kiosk alone.

The only stand-ins are the two systemctl calls (reload and is-active), replaced through the
playbook's own variables by commands that leave a mark in the temporary folder.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
BIN = Path(sys.executable).parent
PLAYBOOK = BIN / "ansible-playbook"

pytestmark = [
    pytest.mark.skipif(not PLAYBOOK.exists(), reason="ansible-core is not installed (pip install -e .[test])"),
    pytest.mark.slow,
]

OLD_CONFIG = '[kiosk]\nid = "old"\nsite_id = "old-site"\n'


def ansible_env(tmp_path: Path) -> dict[str, str]:
    # No ansible.cfg from the caller's environment changes the run.
    return {
        **{key: value for key, value in os.environ.items() if key != "ANSIBLE_CONFIG"},
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_REMOTE_TEMP": str(tmp_path / "ansible-remote-tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "PATH": f"{BIN}:{os.environ['PATH']}",
    }


def test_the_playbook_passes_the_syntax_check(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(PLAYBOOK), "--syntax-check", "-i", str(DEPLOY / "inventory.example.yml"), str(DEPLOY / "push-config.yml")],
        capture_output=True, text=True, timeout=120, env=ansible_env(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_example_inventory_renders_a_valid_config_for_every_host(tmp_path: Path) -> None:
    """Each example host's config, rendered by Ansible from the template, passes check-config."""
    out = tmp_path / "rendered"
    out.mkdir()
    result = subprocess.run(
        [str(BIN / "ansible"), "kiosks", "-i", str(DEPLOY / "inventory.example.yml"), "-c", "local",
         "-e", f"ansible_python_interpreter={sys.executable}",
         "-m", "ansible.builtin.template",
         "-a", f"src={DEPLOY / 'templates/config.toml.j2'} dest={out}/{{{{ inventory_hostname }}}}.toml"],
        capture_output=True, text=True, timeout=120, env=ansible_env(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    files = sorted(out.glob("*.toml"))
    assert len(files) == 3
    for file in files:
        check = subprocess.run([str(BIN / "kiosk"), "check-config", str(file)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
    east = tomllib.loads((out / "east.station-9.example.net.toml").read_text())
    assert east["kiosk"] == {"id": "station9-east", "site_id": "station-9", "language": "zh"}
    assert east["platform"]["url"] == "https://platform.example.net/kiosk"


def run_push(tmp_path: Path, hosts: dict[str, dict]) -> subprocess.CompletedProcess[str]:
    user, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name
    common = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "ansible_become": False,
        "kiosk_bin": str(BIN / "kiosk"),
        "kiosk_config_owner": user,
        "kiosk_config_group": group,
        "kiosk_platform_url": "https://platform.example.net/kiosk",
        "kiosk_platform_token": "secret-1",
        "kiosk_upstream_url": "https://collector.example.net",
        "kiosk_upstream_token": "secret-2",
        "kiosk_reload_command": ["touch", f"{tmp_path}/{{{{ inventory_hostname }}}}/reloaded"],
        "kiosk_state_command": ["echo", "active"],
    }
    for name, host in hosts.items():
        (tmp_path / name).mkdir()
        host["kiosk_config_path"] = str(tmp_path / name / "config.toml")
        (tmp_path / name / "config.toml").write_text(OLD_CONFIG)
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"kiosks": {"vars": common, "hosts": hosts}}))
    return subprocess.run(
        [str(PLAYBOOK), "-i", str(inventory), str(DEPLOY / "push-config.yml")],
        capture_output=True, text=True, timeout=120, env=ansible_env(tmp_path),
    )


def test_a_good_config_is_applied_and_a_bad_one_is_rejected_per_host(tmp_path: Path) -> None:
    result = run_push(tmp_path, {
        "gate-1": {"kiosk_site_id": "mall-3", "kiosk_settings": {"thermometer": {"fever_c": 37.5}}},
        "gate-2": {"kiosk_site_id": "mall-3", "kiosk_settings": {"thermometer": {"fever_c": 73}}},
    })
    out = result.stdout
    # One host failed: the run says so.
    assert result.returncode != 0
    # gate-1: replaced, checked, reloaded.
    good = tomllib.loads((tmp_path / "gate-1/config.toml").read_text())
    assert good["kiosk"] == {"id": "gate-1", "site_id": "mall-3"}
    assert good["thermometer"] == {"fever_c": 37.5}
    assert good["upstream"]["token"] == "secret-2"
    assert (tmp_path / "gate-1/reloaded").exists()
    assert list((tmp_path / "gate-1").glob("config.toml.*~")), "the previous config is kept as a backup"
    assert "gate-1: applied and reloaded; service active" in out
    # gate-2: the device's check-config refused it; nothing changed there, no reload.
    assert (tmp_path / "gate-2/config.toml").read_text() == OLD_CONFIG
    assert not (tmp_path / "gate-2/reloaded").exists()
    report = next(line for line in out.splitlines() if "gate-2: REJECTED" in line)
    assert "thermometer.fever_c" in report
    assert "failed=1" in out.split("PLAY RECAP")[1].split("gate-2")[1]

    # The same push again: gate-1 already has that file, so it is neither rewritten nor reloaded.
    (tmp_path / "gate-1/reloaded").unlink()
    written = (tmp_path / "gate-1/config.toml").stat().st_mtime_ns
    again = subprocess.run(
        [str(PLAYBOOK), "-i", str(tmp_path / "inventory.json"), "--limit", "gate-1", str(DEPLOY / "push-config.yml")],
        capture_output=True, text=True, timeout=120, env=ansible_env(tmp_path),
    )
    assert again.returncode == 0, again.stdout
    assert "gate-1: unchanged; service active" in again.stdout
    assert not (tmp_path / "gate-1/reloaded").exists()
    assert (tmp_path / "gate-1/config.toml").stat().st_mtime_ns == written
