"""Write docs/config.md, the config reference, from the shipped config.toml and the scheme.

The shipped file's comments are the one place each setting is explained; this turns them into a
table per section. tests/test_docs.py fails when docs/config.md is out of date.

    .venv/bin/python docs/config_reference.py
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kiosk.config import SHIPPED_CONFIG  # noqa: E402

TARGET = ROOT / "docs" / "config.md"
HEADER = """# Config reference

Generated from the shipped [config.toml](../config.toml) by `docs/config_reference.py`; the
comments there are the source. Every key is optional; unknown keys, wrong types and values out of
range are errors naming the key path (`kiosk check-config`).

A running kiosk notices an edited file (or `systemctl reload kiosk`) and applies it between
visitors. Only the keys listed in `kiosk/reconfigure.py` (`HOT`) are applied in place: the
timings and language in [kiosk], the sampling rules and thresholds in [thermometer], the
[lights] keys, and the screen's mode, size, fps, font, temperature unit, text size and viewfinder, each re-read by the
part that uses it. Any other change, `kiosk.id` and `kiosk.site_id` included, and any key not on
that list, restarts the kiosk (exit 75), which systemd does within seconds.
"""


def reference(text: str) -> str:
    out = [HEADER]
    comment: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        section = re.match(r"^\[([a-z_.]+)\]$", stripped)
        setting = re.match(r"^([a-z_0-9]+)\s*=\s*(.+)$", stripped)
        if section:
            out += ["", f"## [{section.group(1)}]", "", "| key | default | meaning |", "|---|---|---|"]
            comment = []
        elif stripped.startswith("#"):
            comment.append(stripped.lstrip("#").strip())
        elif setting and len(out) > 1:
            meaning = " ".join(comment).replace("|", "\\|") or "(explained with the key above)"
            value = setting.group(2).replace("|", "\\|")
            out.append(f"| `{setting.group(1)}` | `{value}` | {meaning} |")
            comment = []
        elif not stripped:
            comment = [] if not out[-1].startswith("|") else comment
    return "\n".join(out) + "\n"


def main() -> None:
    TARGET.write_text(reference(SHIPPED_CONFIG.read_text(encoding="utf-8")), encoding="utf-8")
    print(TARGET)


if __name__ == "__main__":
    main()
