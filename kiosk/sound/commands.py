"""`kiosk sound render`: the spoken prompts, rendered with espeak-ng into data_dir/sound."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kiosk.config import Config
from kiosk.errors import RenderError
from kiosk.sound.clips import clip_folder, render


def add_arguments(parser: argparse.ArgumentParser, default_config: Path) -> None:
    actions = parser.add_subparsers(dest="sound_command", required=True, metavar="ACTION")
    sub = actions.add_parser(
        "render", help="render the spoken prompts (both languages) into data_dir/sound; only what changed",
        description="Render every spoken prompt, in Chinese and English, with espeak-ng into "
                    "data_dir/sound. Clips whose text, voice and espeak-ng are unchanged are kept. "
                    "Exit 0 when every clip is in place, 1 otherwise.",
    )
    sub.add_argument("--config", type=Path, default=default_config, help=f"config file (default {default_config})")
    sub.add_argument("--check", action="store_true", help="render nothing: exit 0 if every clip is up to date, 1 if not")


def run_render(config: Config, check: bool) -> int:
    folder = clip_folder(config)
    try:
        report = render(config.sound, folder, check=check)
    except RenderError as exc:
        print(f"kiosk: {exc}", file=sys.stderr)
        return 1
    if check:
        if report.up_to_date:
            print(f"{folder}: {len(report.unchanged)} clips, up to date")
            return 0
        print(f"{folder}: {len(report.rendered)} clip(s) to render, {len(report.removed)} to remove")
        return 1
    for name, problem in sorted(report.failed.items()):
        print(f"kiosk: could not render {problem}", file=sys.stderr)
    print(f"{folder}: {len(report.rendered)} rendered, {len(report.unchanged)} unchanged, "
          f"{len(report.removed)} removed, {len(report.failed)} failed ({report.seconds:.1f} s)")
    return 1 if report.failed else 0
