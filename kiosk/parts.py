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
from kiosk.display.lights import Lights
from kiosk.display.screen import Screen
from kiosk.errors import KioskError
from kiosk.sensors.camera import open_camera
from kiosk.sensors.reader import CodeReader
from kiosk.sensors.scanner import Scanner
from kiosk.sensors.thermometer import Thermometer, open_i2c_bus
from kiosk.sensors.thermometry import Thermometry
from kiosk.sync import open_sync

if TYPE_CHECKING:
    from kiosk.sim.world import SimWorld


def _needs_world(world: "SimWorld | None", key: str) -> "SimWorld":
    if world is None:
        raise KioskError(f"{key} = \"sim\" only works inside `kiosk demo` (it needs the simulated world)")
    return world


def build_parts(config: Config, world: "SimWorld | None" = None) -> KioskParts:
    if config.thermometer.driver == "sim":
        bus = _needs_world(world, "thermometer.driver").bus
    else:
        bus = open_i2c_bus()
    thermometer = Thermometer.from_config(bus, config.thermometer)

    scenario = _needs_world(world, "camera.driver").camera if config.camera.driver == "sim" else None
    camera = open_camera(config.camera, scenario_source=scenario)

    pin_factory = world.pin_factory if (world is not None and config.lights.driver == "mock") else None

    hasher = CodeHasher(load_or_create_secret(config.secret_path))
    store, uploader = open_sync(config)
    # Every scheme behind one verify(payload): platform lookups, EU DCC, SMART Health Cards.
    verifier = build_router(config, hasher)
    kiosk_parts = KioskParts(
        thermometry=Thermometry(thermometer, config.thermometer),
        reader=CodeReader(camera, Scanner(config.camera.decoder), config.camera.fps),
        verifier=verifier,
        store=store,
        uploader=uploader,
        screen=Screen(config.screen, config.kiosk.language),
        lights=Lights(config.lights, pin_factory=pin_factory),
        # The phone-number lookup for people without phones (codes.family_lookups = 0: none).
        family=FamilyLookup.from_config(config) if config.codes.family_lookups else None,
    )
    if isinstance(verifier.trust, TrustListKeeper):
        kiosk_parts.extra_threads.append(verifier.trust.run)  # keeps the trust list current
    return kiosk_parts
