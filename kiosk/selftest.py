"""`kiosk selftest`: every part in turn, with pass or fail and what was seen.

Run it with the service stopped (the camera and the pins can have only one user). Lights, buzzer
and relay are switched on and off and read back; the thermometer is read once; one camera frame
is checked for brightness and sharpness; the sound device is opened and three beeps are played,
and the spoken prompts must be rendered for what the screen says now; the platform and the
collector must answer over HTTP.
"""

from __future__ import annotations

import io
import os
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from kiosk.config import Config
from kiosk.display.lights import Lights
from kiosk.errors import KioskError
from kiosk.http import AnswerTooLarge, NetworkError, guard_session, request
from kiosk.sensors.camera import open_camera
from kiosk.sensors.thermometer import Thermometer, is_simulated, open_thermometer

if TYPE_CHECKING:
    from kiosk.sim.world import SimWorld

# A frame darker or brighter than this on average shows nothing useful (lens cap, no light, glare).
BRIGHTNESS_RANGE = (15.0, 240.0)
# Variance of the Laplacian below this: the picture is a blur (out of focus, fogged window).
MIN_SHARPNESS = 20.0
FRAME_ATTEMPTS = 20
# A reachability probe only needs the status line; a page longer than this is not read.
PROBE_ANSWER_BYTES = 64 * 1024


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def sharpness(frame: np.ndarray) -> float:
    """Variance of a 4-neighbour Laplacian: high for crisp edges, near zero for a blur."""
    image = frame.astype(np.float32)
    laplacian = (image[1:-1, :-2] + image[1:-1, 2:] + image[:-2, 1:-1] + image[2:, 1:-1] - 4 * image[1:-1, 1:-1])
    return float(laplacian.var())


def _guard(name: str, probe: Callable[[], Check]) -> Check:
    try:
        return probe()
    except KioskError as exc:
        return Check(name, False, str(exc))
    except Exception as exc:  # a self-test reports every failure; it never stops at one
        return Check(name, False, f"{type(exc).__name__}: {exc}")


def check_outputs(lights: Lights) -> list[Check]:
    checks = []
    for name, device in (("green light", lights.green), ("red light", lights.red),
                         ("buzzer", lights.buzzer), ("gate relay", lights.relay)):
        def toggle(device=device, name=name) -> Check:
            device.on()
            time.sleep(0.3)  # long enough to see or hear
            was_on = bool(device.value)
            device.off()
            was_off = not device.value
            pin = device.pin.info.name if hasattr(device.pin, "info") else device.pin
            return Check(name, was_on and was_off, f"{pin}: on then off" if was_on and was_off
                         else f"{pin}: did not follow (on={was_on}, off={was_off})")
        checks.append(_guard(name, toggle))
    return checks


def check_thermometer(thermometer: Thermometer) -> Check:
    def read() -> Check:
        sample = thermometer.read()
        return Check("thermometer", True, f"object {sample.object_c:.2f} °C, ambient {sample.ambient_c:.2f} °C")
    return _guard("thermometer", read)


def check_camera(config: Config, world: "SimWorld | None") -> Check:
    def frame() -> Check:
        camera = open_camera(config.camera, scenario_source=world.camera if world else None)
        try:
            image = None
            for _ in range(FRAME_ATTEMPTS):
                image = camera.read()
                if image is not None:
                    break
                time.sleep(1 / config.camera.fps)
        finally:
            camera.close()
        if image is None:
            return Check("camera", False, f"no frame in {FRAME_ATTEMPTS} reads")
        brightness, crisp = float(image.mean()), sharpness(image)
        detail = f"{image.shape[1]}x{image.shape[0]}, brightness {brightness:.0f}, sharpness {crisp:.0f}"
        low, high = BRIGHTNESS_RANGE
        if not low <= brightness <= high:
            return Check("camera", False, detail + " (too dark or too bright: lens cap, light?)")
        if crisp < MIN_SHARPNESS:
            return Check("camera", False, detail + " (blurred: focus, dirty window?)")
        return Check("camera", True, detail)
    return _guard("camera", frame)


def check_sound(config: Config) -> list[Check]:
    """The sound device (opened as the player opens it, three beeps played) and the spoken prompts
    (every clip rendered for the screen's current words, in the configured voices)."""
    section = config.sound
    if not section.enabled:
        return [Check("sound", True, "off (sound.enabled = false): nothing to check")]

    def device() -> Check:
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        import pygame

        from kiosk.sound import tones
        from kiosk.sound.player import BUFFER, CHANNELS, FREQUENCY, SIZE

        try:
            pygame.mixer.init(frequency=FREQUENCY, size=SIZE, channels=CHANNELS, buffer=BUFFER, allowedchanges=0)
            opened = pygame.mixer.get_init()
        except pygame.error as exc:
            return Check("sound", False, f"no sound device: {exc}")
        try:
            if not opened:
                return Check("sound", False, "no sound device: the mixer did not open")
            beeps = pygame.mixer.Sound(file=io.BytesIO(tones.wav_bytes("attention")))
            beeps.set_volume(section.volume)
            channel = beeps.play()
            until = time.monotonic() + 2 * beeps.get_length() + 1.0
            while channel is not None and channel.get_busy() and time.monotonic() < until:
                time.sleep(0.02)
            return Check("sound", True, f"{opened[0]} Hz, {opened[2]} channels: three beeps played")
        finally:
            pygame.mixer.quit()

    checks = [_guard("sound", device)]
    if not section.voice:
        checks.append(Check("spoken prompts", True, "none needed (sound.voice = false: tones only)"))
        return checks

    def clips() -> Check:
        from kiosk.sound.clips import ClipLibrary, clip_folder

        library = ClipLibrary(clip_folder(config), section)
        if library.problem:
            return Check("spoken prompts", False, library.problem)
        return Check("spoken prompts", True, f"{len(library)} clips, current (voices {section.zh_voice}, {section.en_voice})")

    checks.append(_guard("spoken prompts", clips))
    return checks


def check_reachable(name: str, url: str, timeout_s: float, ca_bundle: str | None = None) -> Check:
    def probe() -> Check:
        session = guard_session()
        try:
            answer = request(session, "GET", url, seconds=timeout_s, max_bytes=PROBE_ANSWER_BYTES,
                             verify=ca_bundle or True)
        except AnswerTooLarge:  # a long page: still a server that answers
            return Check(name, True, f"{url}: answered (more than {PROBE_ANSWER_BYTES} bytes)")
        except NetworkError as exc:
            return Check(name, False, f"{url}: unreachable ({exc})")
        finally:
            session.close()
        # Any answer below 500 means the server is there (a GET on a POST endpoint may be refused).
        ok = answer.status < 500
        return Check(name, ok, f"{url}: HTTP {answer.status}")
    return _guard(name, probe)


def run_selftest(config: Config, world: "SimWorld | None" = None) -> list[Check]:
    # Mock lights need no world: the lights open mock pins of their own (`open_pin_factory`).
    simulated = is_simulated(config.thermometer.driver) or config.camera.driver == "sim"
    if simulated and world is None:
        from kiosk.sim.world import SimWorld

        world = SimWorld(config)
    checks: list[Check] = []
    try:
        lights = Lights(config.lights, pin_factory=world.pin_factory if world else None)
    except KioskError as exc:
        checks.append(Check("lights", False, str(exc)))
    else:
        try:
            checks += check_outputs(lights)
        finally:
            lights.close()
    try:
        thermometer = open_thermometer(config.thermometer, sim_bus=world.bus if world else None)
    except KioskError as exc:
        checks.append(Check("thermometer", False, str(exc)))
    else:
        checks.append(check_thermometer(thermometer))
    checks.append(check_camera(config, world))
    checks += check_sound(config)
    checks.append(check_reachable("platform", config.platform.url, config.platform.timeout_s))
    checks.append(check_reachable("collector", config.upstream.url, config.upstream.timeout_s,
                                  config.upstream.ca_bundle or None))
    return checks


def as_table(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    return "\n".join(f"{'PASS' if c.ok else 'FAIL'}  {c.name:<{width}}  {c.detail}" for c in checks)


def as_dicts(checks: list[Check]) -> list[dict]:
    return [asdict(c) for c in checks]
