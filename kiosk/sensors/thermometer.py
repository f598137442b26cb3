"""What the kiosk asks of a thermometer, and the one table of drivers ``thermometer.driver`` picks from.

Thermometry, the self-test and `kiosk calibrate` talk to a `Thermometer` only: `read()` gives the
object and ambient temperature in °C, or raises `SensorError` saying why they cannot be trusted
(the kiosk then refuses the visitor being measured, or goes out of service). A chip that stores an
emissivity correction the operator may change also offers `EmissivitySetting`; ask with
``isinstance(thermometer, EmissivitySetting)``.

`DRIVERS` is the registry, the way `kiosk.sensors.camera.DRIVERS` is for cameras: one line per
chip, naming the module that opens it, its emulated twin in `kiosk.sim`, and the driver name that
runs the real driver code on that emulated chip (the demo and the tests). Modules are given by
name and imported only when their driver is opened, so the config scheme takes its list of
accepted names from here without importing any hardware library.
"""

from __future__ import annotations

import importlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from kiosk.errors import SensorError, SettingError

if TYPE_CHECKING:
    from kiosk.config import ThermometerSection


@dataclass(frozen=True)
class ThermoSample:
    """One reading, in °C: what the sensor sees (`object_c`) and its own die temperature."""

    object_c: float
    ambient_c: float


@runtime_checkable
class Thermometer(Protocol):
    """An IR thermometer the kiosk can measure with."""

    def read(self) -> ThermoSample:
        """Object and ambient °C; `SensorError` saying why when the reading cannot be trusted."""
        ...

    def describe(self) -> str:
        """The chip, where it sits and its settings, for a technician (may read the chip)."""
        ...


@runtime_checkable
class EmissivitySetting(Protocol):
    """A thermometer whose emissivity correction is stored in the chip and can be changed."""

    def emissivity(self) -> float:
        """The emissivity the chip corrects for (0.1..1.0)."""
        ...

    def write_emissivity(self, emissivity: float) -> float:
        """Store a new emissivity and return what the chip holds afterwards; `SensorError` if it did not take."""
        ...


@dataclass(frozen=True)
class Driver:
    """One chip. `module` defines ``open_thermometer(section, bus, *, open_bus, clock, sleep)``;
    `sim_chip` ("module:Class") is its emulated twin, built as ``Class(address, ambient_c=...,
    object_source=...)`` and put on the simulator's I2C bus; `sim_name` is the thermometer.driver
    value that runs the driver on that emulated chip."""

    module: str
    sim_chip: str
    sim_name: str


# thermometer.driver names -> drivers. A new chip is one line here (its module and its emulated twin).
DRIVERS: dict[str, Driver] = {
    "mlx90614": Driver("kiosk.sensors.mlx90614", sim_chip="kiosk.sim.mlx90614:MLX90614Chip", sim_name="sim"),
}


def driver_names() -> tuple[str, ...]:
    """Every value thermometer.driver accepts: each chip's name, then each emulated twin's."""
    return (*DRIVERS, *(driver.sim_name for driver in DRIVERS.values()))


def find_driver(name: str) -> tuple[str, Driver, bool]:
    """(chip name, driver, simulated) for a thermometer.driver value; `SettingError` for an unknown one."""
    if name in DRIVERS:
        return name, DRIVERS[name], False
    for chip, driver in DRIVERS.items():
        if driver.sim_name == name:
            return chip, driver, True
    known = ", ".join(f'"{known}"' for known in driver_names())
    raise SettingError(f"thermometer.driver: unknown driver {name!r}; known: {known}")


def is_simulated(name: str) -> bool:
    """True for a driver name that runs on the simulator's emulated chip."""
    return find_driver(name)[2]


def _attribute(spec: str) -> Any:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def simulated_chip(section: ThermometerSection, **settings: Any) -> Any:
    """The emulated twin of the configured chip (of the chip itself for a real driver), for the
    simulator to attach to its I2C bus at the configured address."""
    _chip, driver, _simulated = find_driver(section.driver)
    return _attribute(driver.sim_chip)(section.i2c_address, **settings)


def open_thermometer(
    section: ThermometerSection,
    *,
    sim_bus: Any | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Thermometer:
    """The thermometer that thermometer.driver names.

    A real chip is on the Pi's I2C bus, opened at its first read: a bus missing at boot is a sensor
    fault that a later read clears, not a crash. An emulated one is on `sim_bus`, the simulator's
    bus (`kiosk demo`); without it that driver cannot run.
    """
    chip, driver, simulated = find_driver(section.driver)
    module = importlib.import_module(driver.module)
    if simulated:
        if sim_bus is None:
            raise SettingError(f'thermometer.driver = "{section.driver}" only works inside `kiosk demo` '
                             "(it needs the simulated world)")
        thermometer: Thermometer = module.open_thermometer(section, sim_bus, clock=clock, sleep=sleep)
    else:
        thermometer = module.open_thermometer(section, None, open_bus=open_i2c_bus, clock=clock, sleep=sleep)
    return thermometer


def open_i2c_bus() -> Any:
    """The Pi's I2C bus (SDA GPIO2, SCL GPIO3) as a `busio.I2C`, for a real sensor only.

    The MLX90614 is an SMBus device and does not work at 400 kHz: keep the bus at its 100 kHz
    default (``dtparam=i2c_arm=on`` and no faster ``i2c_arm_baudrate`` in /boot/firmware/config.txt).
    `board` is imported here, not at module load, so the simulator never needs it.
    """
    # Blinka checks its platform packages at `import board` and, at a terminal, offers to pip-install
    # some (apt's python3-libgpiod has no metadata it recognises): never from the kiosk.
    os.environ.setdefault("BLINKA_SKIP_DEPENDENCY_CHECK", "1")
    try:
        import board

        return board.I2C()
    except Exception as exc:  # Blinka raises several kinds on a board without I2C
        raise SensorError(f"no I2C bus ({type(exc).__name__}: {exc}): {_i2c_advice(exc)}") from exc


def _i2c_advice(exc: Exception) -> str:
    """What to do, by what Blinka raised (a PC, I2C switched off, a device the user may not open)."""
    if isinstance(exc, PermissionError):
        return ("the kiosk user may not open /dev/i2c-1: add it to the i2c group (setup.sh does), and keep "
                "DeviceAllow=/dev/i2c-1 in the service")
    if isinstance(exc, (AttributeError, NotImplementedError)):
        return "this machine is not a Raspberry Pi with I2C; to try the kiosk on simulated hardware run `kiosk demo`"
    return ("enable I2C (sudo raspi-config nonint do_i2c 0, then reboot) and check that i2c-dev is loaded; "
            "without the hardware try `kiosk demo`")
