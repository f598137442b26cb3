"""Builds the kiosk's parts from the config: real drivers on the Pi, emulated ones in simulation.

The driver names in the config pick the implementation, the way gpiozero picks a pin factory;
everything above the lowest layer is the same code in both cases.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kiosk.app import KioskParts
from kiosk.codes.family import FamilyLookup
from kiosk.codes.hashing import CodeHasher, load_or_create_secret
from kiosk.codes.router import build_router
from kiosk.codes.trustlist import TrustListKeeper
from kiosk.config import Config
from kiosk.display.lights import KeptLights
from kiosk.display.screen import Screen
from kiosk.errors import SettingError
from kiosk.sensors.camera import FrameSource, open_camera
from kiosk.sensors.qrpipeline import frame_budget_s
from kiosk.sensors.reader import CodeReader
from kiosk.sensors.reopening import ReopeningSource
from kiosk.sensors.scanner import Scanner
from kiosk.sensors.thermometer import open_thermometer
from kiosk.sensors.thermometry import Thermometry
from kiosk.sync import open_sync

if TYPE_CHECKING:
    from kiosk.sim.world import SimWorld


def _needs_world(world: "SimWorld | None", key: str) -> "SimWorld":
    if world is None:
        raise SettingError(f"{key} = \"sim\" only works inside `kiosk demo` (it needs the simulated world)")
    return world


def build_parts(config: Config, world: "SimWorld | None" = None) -> KioskParts:
    """Every part, the screen and the lights first.

    Hardware that is missing at boot does not stop the kiosk: an absent I2C bus is a thermometer
    fault, a missing camera a reader fault, busy GPIO pins a lights fault. Each is tried again by
    itself, and until then the kiosk is out of service with the cause on its screen.
    """
    screen = Screen(config.screen, config.kiosk.language)
    # The simulator's mock pins are offered; the lights use them only when lights.driver = "mock".
    lights = KeptLights(config.lights, pin_factory=world.pin_factory if world is not None else None)

    thermometer = open_thermometer(config.thermometer, sim_bus=world.bus if world is not None else None)

    camera: FrameSource
    if config.camera.driver == "picamera2":
        camera = ReopeningSource(lambda: open_camera(config.camera))
    else:
        scenario = _needs_world(world, "camera.driver").camera if config.camera.driver == "sim" else None
        camera = open_camera(config.camera, scenario_source=scenario)

    hasher = CodeHasher(load_or_create_secret(config.secret_path))
    store, uploader = open_sync(config)
    # Every scheme behind one verify(payload): platform lookups, EU DCC, SMART Health Cards.
    verifier = build_router(config, hasher)
    kiosk_parts = KioskParts(
        thermometry=Thermometry(thermometer, config.thermometer),
        # The scanner keeps each frame within its share of the frame period (see qrpipeline).
        reader=CodeReader(camera, Scanner(config.camera.decoder, budget_s=frame_budget_s(config.camera.fps)),
                          config.camera.fps),
        verifier=verifier,
        store=store,
        uploader=uploader,
        screen=screen,
        lights=lights,
        # The phone-number lookup for people without phones (codes.family_lookups = 0: none).
        family=FamilyLookup.from_config(config) if config.codes.family_lookups else None,
    )
    # The start and measuring pages show what the camera sees (screen.viewfinder).
    screen.set_preview(kiosk_parts.reader.preview)
    if isinstance(verifier.trust, TrustListKeeper):
        kiosk_parts.extra_threads.append(verifier.trust.run)  # keeps the trust list current
    return kiosk_parts
