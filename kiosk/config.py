"""The config scheme, loading and error reporting.

Every section is a pydantic model that forbids unknown keys, so a typo made over SSH fails loudly.
Errors are reported one per line with the full key path: ``thermometer.fever_c: must be <= 42 (got 73)``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from kiosk.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("/etc/kiosk/config.toml")
SHIPPED_CONFIG = Path(__file__).resolve().parent.parent / "config.toml"

GpioPin = Annotated[int, Field(ge=0, le=27)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class KioskSection(Section):
    id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")] = "kiosk-01"
    site_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")] = "site-01"
    language: Literal["zh", "en", "both"] = "both"
    data_dir: Path = Path("/var/lib/kiosk")
    verdict_s: Annotated[float, Field(ge=0.5, le=30)] = 3.0
    prompt_after_s: Annotated[float, Field(ge=1, le=60)] = 6.0
    abandon_after_s: Annotated[float, Field(ge=2, le=300)] = 20.0

    @model_validator(mode="after")
    def _abandon_after_prompt(self) -> "KioskSection":
        if self.abandon_after_s <= self.prompt_after_s:
            raise ValueError("abandon_after_s must be greater than prompt_after_s")
        return self


class ThermometerSection(Section):
    driver: Literal["mlx90614", "sim"] = "mlx90614"
    i2c_address: Annotated[int, Field(ge=0x03, le=0x77)] = 0x5A
    sample_hz: Annotated[float, Field(ge=1, le=50)] = 20.0
    presence_c: Annotated[float, Field(ge=25, le=34)] = 30.0
    stable_window_s: Annotated[float, Field(ge=0.1, le=5)] = 0.4
    stable_tolerance_c: Annotated[float, Field(ge=0.02, le=1.0)] = 0.2
    max_settle_s: Annotated[float, Field(ge=0.5, le=20)] = 4.0
    offset_c: Annotated[float, Field(ge=-5, le=5)] = 0.0
    fever_c: Annotated[float, Field(ge=35, le=42)] = 37.3
    cold_floor_c: Annotated[float, Field(ge=30, le=36.5)] = 35.5
    plausible_max_c: Annotated[float, Field(ge=40, le=60)] = 45.0
    retry_after_s: Annotated[float, Field(ge=0.5, le=60)] = 2.0


class CameraSection(Section):
    driver: Literal["picamera2", "files", "sim"] = "picamera2"
    width: Annotated[int, Field(ge=160, le=4056)] = 640
    height: Annotated[int, Field(ge=120, le=3040)] = 480
    fps: Annotated[float, Field(ge=1, le=60)] = 15.0
    path: str = ""
    decoder: Literal["zxing", "pyzbar"] = "zxing"


class PlatformSection(Section):
    url: Annotated[str, Field(pattern=r"^https?://")] = "http://127.0.0.1:8470/platform"
    token: SecretStr = SecretStr("")
    timeout_s: Annotated[float, Field(gt=0, le=10)] = 1.5
    max_code_age_s: Annotated[float, Field(ge=10, le=3600)] = 90.0
    max_proxy_code_age_s: Annotated[float, Field(ge=60, le=7 * 86400)] = 86400.0
    clock_skew_s: Annotated[float, Field(ge=0, le=300)] = 10.0
    fallback: Literal["refuse", "out_of_service"] = "refuse"


class UpstreamSection(Section):
    url: Annotated[str, Field(pattern=r"^https?://")] = "http://127.0.0.1:8470"
    token: SecretStr = SecretStr("")
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 5.0
    batch_size: Annotated[int, Field(ge=1, le=5000)] = 200
    interval_s: Annotated[float, Field(ge=0.1, le=3600)] = 2.0
    gzip: bool = True


class LightsSection(Section):
    driver: Literal["gpio", "mock"] = "gpio"
    green_pin: GpioPin = 17
    red_pin: GpioPin = 27
    buzzer_pin: GpioPin = 22
    relay_pin: GpioPin = 23
    active_high: bool = True
    relay_active_high: bool = True
    relay_pulse_s: Annotated[float, Field(ge=0.1, le=30)] = 1.0

    @model_validator(mode="after")
    def _distinct_pins(self) -> "LightsSection":
        pins = [self.green_pin, self.red_pin, self.buzzer_pin, self.relay_pin]
        if len(set(pins)) != len(pins):
            raise ValueError(f"green_pin, red_pin, buzzer_pin and relay_pin must differ, got {pins}")
        return self


class ScreenSection(Section):
    mode: Literal["auto", "fullscreen", "window", "headless"] = "auto"
    width: Annotated[int, Field(ge=320, le=3840)] = 800
    height: Annotated[int, Field(ge=240, le=2160)] = 480
    fps: Annotated[float, Field(ge=5, le=60)] = 30.0
    font: str = ""


class Config(Section):
    kiosk: KioskSection = KioskSection()
    thermometer: ThermometerSection = ThermometerSection()
    camera: CameraSection = CameraSection()
    platform: PlatformSection = PlatformSection()
    upstream: UpstreamSection = UpstreamSection()
    lights: LightsSection = LightsSection()
    screen: ScreenSection = ScreenSection()

    @property
    def store_path(self) -> Path:
        return self.kiosk.data_dir / "events.db"

    @property
    def secret_path(self) -> Path:
        return self.kiosk.data_dir / "install.key"


def _describe(error: dict[str, Any]) -> str:
    path = ".".join(str(part) for part in error["loc"]) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{path}: unknown key"
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    if kind not in ("missing", "model_type") and not isinstance(error.get("input", {}), (dict, list)):
        message += f" (got {error['input']!r})"
    return f"{path}: {message}"


def parse(data: dict[str, Any], source: str = "<config>") -> Config:
    """Validate a decoded TOML document; raise ConfigError listing every problem with its key path."""
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, [_describe(e) for e in exc.errors()]) from None


def parse_text(text: str, source: str = "<config>") -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [f"not valid TOML: {exc}"]) from None
    return parse(data, source)


def load(path: Path | str) -> Config:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError:
        raise ConfigError(str(path), ["not UTF-8 text"]) from None
    return parse_text(text, str(path))


def load_overrides(path: Path | str) -> dict[str, Any]:
    """A partial config file's raw settings, checked against the scheme (missing keys are fine)."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read: {exc.strerror or exc}"]) from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(str(path), [f"not valid TOML: {exc}"]) from None
    parse(data, str(path))
    return data


def merged(base: Config, overrides: dict[str, Any], source: str = "<overrides>") -> Config:
    """The base config with some sections' keys replaced, validated as a whole."""
    data = base.model_dump(mode="python")
    for section, values in overrides.items():
        if isinstance(values, dict) and isinstance(data.get(section), dict):
            data[section].update(values)
        else:
            data[section] = values
    for section in ("platform", "upstream"):
        token = data[section]["token"]
        if isinstance(token, SecretStr):
            data[section]["token"] = token.get_secret_value()
    return parse(data, source)
