"""The spoken prompts as WAV clips, rendered once with espeak-ng into ``data_dir/sound``.

One clip per prompt and language (``fever.zh.wav``, ``fever.en.wav`` ...), always both languages,
so a change of kiosk.language needs no new render. ``manifest.json`` records what each clip says,
in which voice, at which rate and with which espeak-ng: ``render`` renders only what is missing or
changed (a new screen text, another voice, a new espeak-ng) and removes clips nothing uses, so
running it again is cheap and changes nothing. At run time ``ClipLibrary`` plays only clips whose
manifest entry still says what the prompt says now: a clip of an old text is never spoken.

The folder is the kiosk's like the rest of the data folder: 0700, files 0600.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import stat
import subprocess
import threading
import time
import wave
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kiosk.config import Config, SoundSection
from kiosk.datadir import FILE_MODE, make_private_dir, open_private
from kiosk.errors import RenderError
from kiosk.sound.prompts import LANGUAGES, prompt_keys, sentence

log = logging.getLogger(__name__)

FOLDER = "sound"
MANIFEST = "manifest.json"
ESPEAK = "espeak-ng"
# Words per minute. espeak-ng counts each Chinese character as a word: 220 is an unhurried
# Mandarin pace; English a little slower than espeak-ng's 175, for a noisy entrance.
RATES = {"zh": 220, "en": 160}
RENDER_TIMEOUT_S = 60.0
# espeak-ng ends each clip with up to 0.35 s of silence; trimmed to this, so the parts of a prompt
# follow each other at the player's own pace. Part of every clip's fingerprint: a change re-renders.
EDGE_S = {"lead": 0.02, "tail": 0.05}
# Far above what a manifest of every prompt (about 20 KB) or a spoken prompt (44 KB a second) needs;
# a larger file in the folder is damaged and is not read into memory.
MAX_MANIFEST_BYTES = 1024 * 1024
MAX_CLIP_BYTES = 8 * 1024 * 1024


def clip_folder(config: Config) -> Path:
    return config.kiosk.data_dir / FOLDER


def voice_of(section: SoundSection, language: str) -> str:
    return section.zh_voice if language == "zh" else section.en_voice


@dataclass(frozen=True)
class ClipSpec:
    """One clip: what it says and how."""

    key: str
    language: str
    text: str
    voice: str
    rate: int

    @property
    def name(self) -> str:
        return f"{self.key}.{self.language}.wav"

    def fingerprint(self, engine: str) -> str:
        return hashlib.sha256(json.dumps([engine, self.voice, self.rate, self.text, EDGE_S]).encode()).hexdigest()

    def entry(self, engine: str) -> dict[str, object]:
        return {"key": self.key, "language": self.language, "text": self.text, "voice": self.voice,
                "rate": self.rate, "engine": engine, "fingerprint": self.fingerprint(engine)}

    def matches(self, entry: object) -> bool:
        """Whether a manifest entry was rendered from this spec (any espeak-ng version)."""
        return isinstance(entry, dict) and all(entry.get(k) == getattr(self, k) for k in ("text", "voice", "rate"))


def wanted(section: SoundSection) -> list[ClipSpec]:
    """Every clip the kiosk may play, in both languages."""
    return [ClipSpec(key, language, sentence(key, language), voice_of(section, language), RATES[language])
            for key in prompt_keys() for language in LANGUAGES]


def read_bounded(path: Path, limit: int) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them; OSError otherwise.

    Never blocks on a FIFO, nor reads a device (a link to /dev/zero) or a huge file into memory.
    """
    # O_NONBLOCK: opening a FIFO with no writer would wait forever (pygame even holds the GIL).
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"{path.name}: not a regular file")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise OSError(f"{path.name}: larger than {limit} bytes")
    return data


def read_manifest(folder: Path) -> dict[str, dict] | None:
    """The manifest's clips, or None when there is no readable manifest."""
    try:
        data = json.loads(read_bounded(folder / MANIFEST, MAX_MANIFEST_BYTES).decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    clips = data.get("clips") if isinstance(data, dict) else None
    return clips if isinstance(clips, dict) else None


def engine_version(espeak: str = ESPEAK) -> str:
    """espeak-ng's version line; RenderError when it is not installed."""
    program = shutil.which(espeak)
    if program is None:
        raise RenderError(f"{espeak} is not installed (sudo apt-get install espeak-ng); the kiosk plays tones only")
    try:
        result = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=RENDER_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RenderError(f"{espeak} does not run: {exc}") from None
    # "eSpeak NG text-to-speech: 1.51  Data at: ...": the version, without where its data lives.
    return result.stdout.strip().split("  Data at:")[0]


def known_voices(program: str) -> set[str]:
    """The voice names espeak-ng answers to: languages (cmn, en-us), voice names and file names
    (sit/cmn, cmn). A name it does not know is not always an error to espeak-ng itself."""
    try:
        listing = subprocess.run([program, "--voices"], capture_output=True, text=True, timeout=RENDER_TIMEOUT_S).stdout
    except (OSError, subprocess.TimeoutExpired):
        return set()
    names: set[str] = set()
    for line in listing.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 5:
            language, name, file = fields[1], fields[3], fields[4]
            names |= {language, name, file, file.rsplit("/", 1)[-1]}
    return names


@dataclass
class RenderReport:
    rendered: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def up_to_date(self) -> bool:
        return not self.rendered and not self.removed and not self.failed


def _trim(path: Path) -> None:
    """Cut the silence before and after the words of a 16-bit mono WAV file, in place."""
    with wave.open(str(path), "rb") as source:
        params = source.getparams()
        samples = np.frombuffer(source.readframes(params.nframes), dtype="<i2")
    if params.sampwidth != 2 or params.nchannels != 1:
        return
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > 64)  # -54 dBFS: espeak-ng's silence is 0
    if len(loud) == 0:
        return
    rate = params.framerate
    start = max(0, loud[0] - int(EDGE_S["lead"] * rate))
    end = min(len(samples), loud[-1] + 1 + int(EDGE_S["tail"] * rate))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples[start:end].tobytes())


def _render_one(program: str, spec: ClipSpec, folder: Path) -> None:
    target = folder / spec.name
    partial = folder / f".{spec.name}.partial"
    try:
        result = subprocess.run(
            # -b 1: the text is UTF-8 whatever the locale (a service often runs with LANG=C).
            [program, "-b", "1", "-v", spec.voice, "-s", str(spec.rate), "-w", str(partial), "--stdin"],
            input=spec.text.encode("utf-8"), capture_output=True, timeout=RENDER_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise RenderError(f"{spec.name}: espeak-ng took longer than {RENDER_TIMEOUT_S:.0f} s") from None
    if result.returncode != 0 or not partial.is_file() or partial.stat().st_size <= 44:
        partial.unlink(missing_ok=True)
        problem = result.stderr.decode("utf-8", "replace").strip() or f"exit status {result.returncode}"
        raise RenderError(f"{spec.name} (voice {spec.voice!r}): {problem}")
    _trim(partial)
    os.chmod(partial, FILE_MODE)
    os.replace(partial, target)


def render(section: SoundSection, folder: Path, espeak: str = ESPEAK, check: bool = False,
           workers: int = 4) -> RenderReport:
    """Render every missing or changed clip into ``folder``; with ``check``, only say what would be done.

    Raises RenderError when espeak-ng is missing; a clip that fails is reported in ``failed``.
    """
    started = time.monotonic()
    engine = engine_version(espeak)
    program = shutil.which(espeak) or espeak
    manifest = read_manifest(folder) or {}
    specs = wanted(section)
    report = RenderReport()
    todo: list[ClipSpec] = []
    for spec in specs:
        entry = manifest.get(spec.name)
        fresh = isinstance(entry, dict) and entry.get("fingerprint") == spec.fingerprint(engine)
        if fresh and (folder / spec.name).is_file():
            report.unchanged.append(spec.name)
        else:
            todo.append(spec)
    names = {spec.name for spec in specs}
    leftovers = sorted(path.name for path in folder.glob("*.wav") if path.name not in names) if folder.is_dir() else []
    if check:
        report.rendered = [spec.name for spec in todo]
        report.removed = leftovers
        report.seconds = time.monotonic() - started
        return report
    make_private_dir(folder.parent)
    make_private_dir(folder)
    done: list[ClipSpec] = []
    voices = known_voices(program)
    for spec in list(todo):
        # "+f3" and the like pick a variant of a voice.
        if voices and spec.voice.split("+")[0] not in voices:
            report.failed[spec.name] = (f"{spec.name}: espeak-ng has no voice {spec.voice!r} "
                                        "(`espeak-ng --voices` lists them)")
            todo.remove(spec)
    with ThreadPoolExecutor(max_workers=max(1, min(workers, os.cpu_count() or 1))) as pool:
        futures = {spec: pool.submit(_render_one, program, spec, folder) for spec in todo}
        for spec, future in futures.items():
            try:
                future.result()
            except (RenderError, OSError) as exc:
                report.failed[spec.name] = str(exc)
            else:
                done.append(spec)
                report.rendered.append(spec.name)
    for name in leftovers:
        (folder / name).unlink(missing_ok=True)
        report.removed.append(name)
    kept = {spec.name: spec.entry(engine) for spec in specs if spec.name in report.unchanged or spec in done}
    partial = folder / f".{MANIFEST}.partial"
    with open_private(partial) as out:
        json.dump({"format": 1, "clips": kept}, out, ensure_ascii=False, indent=1, sort_keys=True)
    os.replace(partial, folder / MANIFEST)
    report.seconds = time.monotonic() - started
    return report


class ClipLibrary:
    """The clips the running kiosk may play: those the manifest says were rendered from what each
    prompt says now, in the configured voice. ``problem`` says (once, for the log) what is missing."""

    def __init__(self, folder: Path, section: SoundSection):
        self.folder = folder
        self.voices = (section.zh_voice, section.en_voice)
        self._paths: dict[tuple[str, str], Path] = {}
        self.problem: str | None = None
        specs = wanted(section)
        self.expected = len(specs)  # clips the kiosk may play, both languages
        manifest = read_manifest(folder)
        if manifest is None:
            what = "no folder" if not folder.is_dir() else "no manifest.json"
            self.problem = (f"no spoken prompts in {folder} ({what}): tones only until "
                            "`kiosk sound render` makes them")
            return
        stale = []
        for spec in specs:
            if spec.matches(manifest.get(spec.name)):
                self._paths[(spec.key, spec.language)] = folder / spec.name
            else:
                stale.append(spec.name)
        if stale:
            self.problem = (f"{len(stale)} spoken prompt(s) in {folder} were rendered for other texts or voices "
                            f"or are missing ({', '.join(stale[:3])}{' ...' if len(stale) > 3 else ''}): "
                            "not spoken until `kiosk sound render` makes them again")

    def path(self, key: str, language: str) -> Path | None:
        return self._paths.get((key, language))

    def __len__(self) -> int:
        return len(self._paths)


class ClipShelf:
    """The ClipLibrary for the settings in use, read again when the manifest or the voices change
    (a `kiosk sound render` while the kiosk runs is picked up by the next prompt). Used on the
    player's thread, and by the status thread for `kiosk status`: the screen loop never touches a
    file for sound. Each distinct problem is logged once."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._library: ClipLibrary | None = None
        self._stamp: tuple | None = None
        self._logged: set[str] = set()
        self._lock = threading.Lock()

    def library(self, section: SoundSection) -> ClipLibrary:
        with self._lock:
            return self._current(section)

    def _current(self, section: SoundSection) -> ClipLibrary:
        try:
            changed_at: int | None = (self.folder / MANIFEST).stat().st_mtime_ns
        except OSError:
            changed_at = None
        stamp = (changed_at, section.zh_voice, section.en_voice)
        if self._library is None or stamp != self._stamp:
            self._library, self._stamp = ClipLibrary(self.folder, section), stamp
            problem = self._library.problem
            if problem and problem not in self._logged:
                self._logged.add(problem)
                log.warning("sound: %s", problem)
        return self._library
