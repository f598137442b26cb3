"""The config scheme, loading and error reporting.

Every section is a pydantic model that forbids unknown keys, so a typo made over SSH fails loudly.
Errors are reported one per line with the full key path: ``thermometer.fever_c: must be <= 42 (got 73)``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator,
                      model_validator)

from kiosk.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("/etc/kiosk/config.toml")
SHIPPED_CONFIG = Path(__file__).resolve().parent.parent / "config.toml"

GpioPin = Annotated[int, Field(ge=0, le=27)]
_HTTP_URL = re.compile(r"https?://[^/@\s]+([/?#]\S*)?")


def _http_url(value: str) -> str:
    # No user:password@ part: credentials go in the token settings, which are never logged, and
    # requests would let a password in the URL replace the bearer token.
    if not _HTTP_URL.fullmatch(value):
        raise ValueError("must be an http:// or https:// URL with no spaces and no user:password@ part "
                         "(a token goes in the section's token setting)")
    return value


HttpUrl = Annotated[str, AfterValidator(_http_url)]


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
    presence_rise_c: Annotated[float, Field(ge=0.3, le=10)] = 1.0
    stable_window_s: Annotated[float, Field(ge=0.1, le=5)] = 0.3
    stable_tolerance_c: Annotated[float, Field(ge=0.02, le=1.0)] = 0.1
    hold_still_after_s: Annotated[float, Field(ge=0.3, le=15)] = 1.5
    max_settle_s: Annotated[float, Field(ge=0.5, le=20)] = 4.0
    remeasure_wait_s: Annotated[float, Field(ge=1, le=15)] = 5.0
    site: Literal["wrist", "forehead"] = "wrist"
    wrist_k: Annotated[float, Field(ge=0, le=0.3)] = 0.030
    forehead_k: Annotated[float, Field(ge=0, le=0.3)] = 0.038
    offset_c: Annotated[float, Field(ge=-5, le=5)] = 0.0
    calibration_limit_c: Annotated[float, Field(ge=0.1, le=5)] = 1.0
    fever_c: Annotated[float, Field(ge=35, le=42)] = 37.3
    cold_floor_c: Annotated[float, Field(ge=30, le=36.5)] = 35.5
    plausible_max_c: Annotated[float, Field(ge=40, le=60)] = 45.0
    retries: Annotated[int, Field(ge=0, le=10)] = 3
    retry_pause_s: Annotated[float, Field(ge=0, le=0.5)] = 0.02
    read_pause_s: Annotated[float, Field(ge=0, le=0.1)] = 0.002
    max_read_s: Annotated[float, Field(ge=0.01, le=2)] = 0.1
    stuck_after_s: Annotated[float, Field(ge=2, le=600)] = 10.0
    retry_after_s: Annotated[float, Field(ge=0.5, le=60)] = 2.0

    @model_validator(mode="after")
    def _settling_order(self) -> "ThermometerSection":
        if not self.stable_window_s < self.hold_still_after_s < self.max_settle_s:
            raise ValueError("stable_window_s < hold_still_after_s < max_settle_s must hold")
        if self.stable_window_s * self.sample_hz < 3:
            raise ValueError("stable_window_s * sample_hz must be at least 3 (a window of 4 readings or more)")
        return self


class CameraSection(Section):
    driver: Literal["picamera2", "files", "sim"] = "picamera2"
    width: Annotated[int, Field(ge=160, le=4056)] = 640
    height: Annotated[int, Field(ge=120, le=3040)] = 480
    fps: Annotated[float, Field(ge=1, le=60)] = 15.0
    # Lens focus distance on cameras with autofocus: a phone held out ~0.3 m; 0 = continuous autofocus.
    focus_m: Annotated[float, Field(ge=0, le=1.0)] = 0.3
    path: str = ""
    decoder: Literal["zxing", "pyzbar"] = "zxing"

    @field_validator("focus_m")
    @classmethod
    def _focus_distance(cls, value: float) -> float:
        if 0 < value < 0.1:
            raise ValueError("must be 0 (continuous autofocus) or between 0.1 and 1.0 metres")
        return value


class PlatformSection(Section):
    url: HttpUrl = "http://127.0.0.1:8470/platform"
    token: SecretStr = SecretStr("")
    timeout_s: Annotated[float, Field(gt=0, le=10)] = 1.5
    max_code_age_s: Annotated[float, Field(ge=10, le=3600)] = 90.0
    max_proxy_code_age_s: Annotated[float, Field(ge=60, le=7 * 86400)] = 86400.0
    clock_skew_s: Annotated[float, Field(ge=0, le=300)] = 10.0
    fallback: Literal["refuse", "out_of_service"] = "refuse"
    breaker_failures: Annotated[int, Field(ge=1, le=100)] = 3
    breaker_cooldown_s: Annotated[float, Field(ge=1, le=3600)] = 30.0


PlatformColour = Literal["green", "yellow", "red"]


class OtherPlatform(Section):
    """A platform of another region whose codes this kiosk recognises, picked by the code's form."""

    name: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._-]+$")]
    prefix: Annotated[str, Field(max_length=64)] = ""
    pattern: Annotated[str, Field(max_length=256)] = ""
    url: HttpUrl
    token: SecretStr = SecretStr("")

    @model_validator(mode="after")
    def _prefix_or_pattern(self) -> "OtherPlatform":
        if bool(self.prefix) == bool(self.pattern):
            raise ValueError("give exactly one of prefix and pattern")
        if self.pattern:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern is not a regular expression: {exc}") from None
        return self


class CodesSection(Section):
    platforms: tuple[OtherPlatform, ...] = ()
    replay_window_s: Annotated[float, Field(ge=0, le=7 * 86400)] = 300.0
    replay_store: Literal["sqlite", "memory"] = "sqlite"
    clock_check: Literal["auto", "kernel", "timesyncd", "off"] = "auto"
    unsynchronised_clock: Literal["refuse", "accept"] = "refuse"
    dcc_vaccinated: PlatformColour = "green"
    dcc_partly_vaccinated: PlatformColour = "yellow"
    dcc_recovered: PlatformColour = "green"
    dcc_negative_test: PlatformColour = "green"
    dcc_positive_test: PlatformColour = "red"
    shc_card: PlatformColour = "green"
    test_within_h: Annotated[float, Field(ge=0, le=30 * 24)] = 0.0
    # Phone-number lookup of family-proxy codes on the touchscreen (0 lookups: turned off).
    family_lookups: Annotated[int, Field(ge=0, le=100)] = 5
    family_window_s: Annotated[float, Field(ge=10, le=86400)] = 600.0
    family_min_digits: Annotated[int, Field(ge=4, le=15)] = 11
    family_max_digits: Annotated[int, Field(ge=4, le=15)] = 11
    family_idle_s: Annotated[float, Field(ge=5, le=600)] = 30.0

    @model_validator(mode="after")
    def _digit_range(self) -> "CodesSection":
        if self.family_min_digits > self.family_max_digits:
            raise ValueError("family_min_digits must not be more than family_max_digits")
        return self


def _public_key_problem(text: str) -> str | None:
    """Why ``text`` is not a PEM or base64 DER public key of a kind that signs trust lists."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

    try:
        if "-----BEGIN" in text:
            key = load_pem_public_key(text.encode("ascii"))
        else:
            key = load_der_public_key(base64.b64decode(text, validate=True))
    except (ValueError, TypeError, UnicodeEncodeError, binascii.Error):
        return "not a PEM or base64 DER public key"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return None
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return None
    return "must be an Ed25519 or ECDSA P-256 public key"


class TrustSection(Section):
    url: HttpUrl = "http://127.0.0.1:8470/trust/list"
    operator_key: Annotated[str, Field(max_length=4096)] = ""
    max_age_h: Annotated[float, Field(gt=0, le=90 * 24)] = 72.0
    stale: Literal["refuse", "accept"] = "refuse"
    refresh_s: Annotated[float, Field(ge=10, le=86400)] = 3600.0
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 10.0

    @field_validator("operator_key")
    @classmethod
    def _key_parses(cls, value: str) -> str:
        problem = _public_key_problem(value.strip()) if value.strip() else None
        if problem:
            raise ValueError(problem)
        return value


class UpstreamSection(Section):
    url: HttpUrl = "http://127.0.0.1:8470"
    token: SecretStr = SecretStr("")
    timeout_s: Annotated[float, Field(gt=0, le=60)] = 5.0
    batch_size: Annotated[int, Field(ge=1, le=5000)] = 200
    interval_s: Annotated[float, Field(ge=0.1, le=3600)] = 2.0
    gzip: bool = True
    ca_bundle: str = ""
    max_batch_bytes: Annotated[int, Field(ge=4096, le=8 * 1024 * 1024)] = 1024 * 1024
    max_retry_s: Annotated[float, Field(ge=1, le=3600)] = 120.0
    urgent_reasons: tuple[Annotated[str, Field(pattern=r"^[a-z_]+$")], ...] = ("yellow_code", "red_code", "fever")
    retention_days: Annotated[float, Field(ge=1, le=3650)] = 30.0
    min_free_mb: Annotated[int, Field(ge=1, le=1_000_000)] = 200


class LightsSection(Section):
    driver: Literal["gpio", "mock"] = "gpio"
    gpio_chip: Annotated[int, Field(ge=0, le=63)] | Literal["auto"] = "auto"
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
    temperature_unit: Literal["C", "F"] = "C"


class Config(Section):
    kiosk: KioskSection = KioskSection()
    thermometer: ThermometerSection = ThermometerSection()
    camera: CameraSection = CameraSection()
    platform: PlatformSection = PlatformSection()
    upstream: UpstreamSection = UpstreamSection()
    lights: LightsSection = LightsSection()
    screen: ScreenSection = ScreenSection()
    codes: CodesSection = CodesSection()
    trust: TrustSection = TrustSection()

    @property
    def store_path(self) -> Path:
        return self.kiosk.data_dir / "events.db"

    @property
    def secret_path(self) -> Path:
        return self.kiosk.data_dir / "install.key"

    @property
    def trust_list_path(self) -> Path:
        return self.kiosk.data_dir / "trust-list.json"

    @property
    def replay_path(self) -> Path:
        return self.kiosk.data_dir / "replay.db"


def _describe(error: Mapping[str, Any]) -> str:
    path = ".".join(str(part) for part in error["loc"]) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{path}: unknown key"
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    # A URL is not echoed back: a mistaken one may hold a password.
    if kind not in ("missing", "model_type") and not path.endswith("url") and not isinstance(error.get("input", {}), (dict, list)):
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
