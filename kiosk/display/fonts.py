"""Finding a font that can draw Chinese, and handing out pygame fonts by size.

Order of search: the configured ``screen.font`` (a missing file is a config mistake and stops the
kiosk), then the fonts Raspberry Pi OS / Debian install (``fonts-wqy-microhei``, ``fonts-wqy-zenhei``,
``fonts-noto-cjk``), then whatever fontconfig offers for Chinese. A font counts only if it really
draws CJK glyphs: fontconfig happily answers with a Latin-only font. Without one, the kiosk logs a
warning and uses pygame's default font, so English text still works.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame

from kiosk.config import font_problem
from kiosk.errors import SettingError

log = logging.getLogger(__name__)

KNOWN_CJK_FONTS: tuple[Path, ...] = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf"),
    Path("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"),
)

# Two different, common characters: a font without CJK glyphs draws both as the same box (or nothing).
_PROBE = ("通", "过")


def draws_cjk(font: pygame.font.Font) -> bool:
    """True when the font draws two different CJK characters as two different, non-empty bitmaps."""
    images = [font.render(char, False, (255, 255, 255), (0, 0, 0)) for char in _PROBE]
    # Surface.get_buffer (pygame 1.9.2+), not image.tobytes (2.1.3+: Bookworm ships 2.1.2).
    data = [image.get_buffer().raw for image in images]
    blank = all(byte == 0 for byte in data[0])
    return not blank and data[0] != data[1]


def _fontconfig_match() -> Path | None:
    """The file fontconfig picks for Chinese sans text, if fontconfig is installed."""
    fc_match = shutil.which("fc-match")
    if fc_match is None:
        return None
    try:
        found = subprocess.run(
            [fc_match, "-f", "%{file}", "sans:lang=zh"], capture_output=True, text=True, timeout=5, check=False
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("fc-match failed: %s", exc)
        return None
    return Path(found) if found else None


# What loading or drawing with a broken font file raises (FreeType's errors come as pygame.error;
# some files load and only fail on the first render).
_FONT_ERRORS = (OSError, ValueError, RuntimeError, pygame.error)


def _loads_with_cjk(path: Path) -> bool:
    try:
        return draws_cjk(pygame.font.Font(str(path), 32))
    except _FONT_ERRORS as exc:
        log.debug("cannot load font %s: %s", path, exc)
        return False


def find_font(configured: str = "", candidates: tuple[Path, ...] = KNOWN_CJK_FONTS) -> Path | None:
    """The font file to use, or None for pygame's default font (no Chinese).

    A configured path that does not exist or cannot be loaded raises SettingError: the maintainer asked
    for that font, so silently using another would hide the typo. Needs ``pygame.font.init()``.
    """
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise SettingError(f"screen.font: font file not found: {path}")
        # Checked again here: the file may have changed since the config was validated.
        problem = font_problem(path)
        if problem:
            raise SettingError(f"screen.font: {path} {problem}")
        try:
            font = pygame.font.Font(str(path), 32)
            cjk = draws_cjk(font)
        except _FONT_ERRORS as exc:
            raise SettingError(f"screen.font: cannot load font {path}: {exc}") from None
        if not cjk:
            log.warning("screen.font %s has no Chinese glyphs; Chinese text will show as boxes", path)
        return path
    for path in candidates:
        if path.is_file() and _loads_with_cjk(path):
            return path
    matched = _fontconfig_match()
    if matched is not None and matched.is_file() and _loads_with_cjk(matched):
        return matched
    log.warning("no font with Chinese glyphs found (install fonts-wqy-microhei); using pygame's default font")
    return None


# Font sizes in steps of about 12 %: every size asked for is drawn at the nearest of these. Each
# pygame font holds its own FreeType face (about 0.5 MB for the CJK font), and fitting text tries
# many sizes; without the ladder a day of screens loads some fifty of them.
SIZE_LADDER: tuple[int, ...] = tuple(sorted({round(12 * 1.12 ** step) for step in range(30)}))


def ladder_size(size: float) -> int:
    """The ladder size nearest to ``size`` (at least the smallest)."""
    return min(SIZE_LADDER, key=lambda step: (abs(step - size), step))


class FontBook:
    """pygame fonts of one face, loaded once per (ladder size, bold)."""

    def __init__(self, path: Path | None):
        if not pygame.font.get_init():
            pygame.font.init()
        self.path = path
        self._fonts: dict[tuple[int, bool], pygame.font.Font] = {}

    @property
    def loaded(self) -> list[tuple[int, bool]]:
        """The (size, bold) faces loaded so far."""
        return sorted(self._fonts)

    @property
    def has_cjk(self) -> bool:
        return draws_cjk(self.get(32))

    def get(self, size: int, bold: bool = False) -> pygame.font.Font:
        key = (ladder_size(size), bold)
        font = self._fonts.get(key)
        if font is None:
            font = pygame.font.Font(str(self.path) if self.path else None, key[0])
            # wqy-microhei ships no bold face; pygame's synthetic bold keeps headlines heavy anyway.
            font.set_bold(bold)
            self._fonts[key] = font
        return font

    @classmethod
    def for_config(cls, configured: str = "") -> FontBook:
        """Initialise pygame's font module and find the face (see find_font)."""
        if not pygame.font.get_init():
            pygame.font.init()
        return cls(find_font(configured))
