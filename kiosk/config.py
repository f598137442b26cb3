"""The config scheme, loading and error reporting.

Every section is a pydantic model that forbids unknown keys, so a typo made over SSH fails loudly.
Errors are reported one per line with the full key path: ``thermometer.fever_c: must be <= 42 (got 73)``.
The value is never echoed for a setting that can hold a secret (every token, trust.operator_key, any
SecretStr or *token*/*key*/*password* name) or a URL, so a pasted private key stays out of the
terminal, the journal and `kiosk status`. Beyond types and ranges, the scheme refuses what would
only fail later: a token sent in the clear to another host, a data_dir that is a file or under
/proc, a NUL in a path, a screen.font that is not a font file, TOML nested too deeply to read.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
import stat
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, SecretStr, ValidationError, ValidationInfo,
                      field_validator, model_validator)

from kiosk.errors import ConfigError
from kiosk.sensors.thermometer import driver_names as thermometer_driver_names

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


def _no_nul(value: str) -> str:
    # The operating system cannot take a path with a NUL in it (Python raises ValueError).
    if "\x00" in value:
        raise ValueError("must not contain a NUL character (\\u0000)")
    return value


PathText = Annotated[str, AfterValidator(_no_nul)]


def is_loopback_host(host: str) -> bool:
    """True for this device itself: 127.0.0.0/8, ::1 or localhost."""
    host = host.lower()
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _checked_token(token: SecretStr, info: ValidationInfo) -> SecretStr:
    """A token is refused where it would leak: in the clear to another host, or able to break its header."""
    value = token.get_secret_value()
    if not value:
        return token
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        raise ValueError("must be one line without control characters (check for a pasted line break)")
    url = info.data.get("url")  # declared before the token: absent only when the url itself was wrong
    if isinstance(url, str) and url.lower().startswith("http://"):
        host = urlsplit(url).hostname or ""
        if not is_loopback_host(host):
            raise ValueError(f"would be sent in the clear to {host}: the url must be https:// "
                             "(plain http:// only to this device: 127.0.0.1, ::1 or localhost), "
                             "or the token left empty")
    return token


KERNEL_FILE_SYSTEMS = (Path("/proc"), Path("/sys"), Path("/dev"))


def _data_dir_problem(path: Path) -> str | None:
    """Why the kiosk could not keep its files in ``path`` (None: it can, or will create it)."""
    real = Path(os.path.realpath(path))
    for kernel in KERNEL_FILE_SYSTEMS:
        if real == kernel or kernel in real.parents:
            where = "is" if real == Path(os.path.abspath(path)) else f"leads to {real},"
            return f"{where} under {kernel}, a kernel file system, not a place for the kiosk's files"
    probe = real
    while True:  # the folder, or the nearest part of its path that exists, must be a folder
        try:
            info = os.stat(probe)
        except (FileNotFoundError, NotADirectoryError):
            if probe.parent == probe:
                return None
            probe = probe.parent
            continue
        except OSError:
            return None  # not visible to this user; the kiosk's own user may well reach it
        if stat.S_ISDIR(info.st_mode):
            return None
        what = "a file, not a folder" if stat.S_ISREG(info.st_mode) else "not a folder"
        return f"is {what}" if probe == real else f"{probe} is {what}"


# The first bytes of TrueType, OpenType and TrueType collection files (what pygame's FreeType reads).
_FONT_SIGNATURES = (b"\x00\x01\x00\x00", b"true", b"typ1", b"OTTO", b"ttcf")


def font_problem(path: Path) -> str | None:
    """Why the file at ``path`` cannot be screen.font; None when it looks like a font or is missing
    (a missing font is reported when the screen opens: it may be installed after the config is written)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        return f"cannot be read ({getattr(exc, 'strerror', None) or exc})"
    if stat.S_ISDIR(info.st_mode):
        return "is a folder, not a font file"
    if not stat.S_ISREG(info.st_mode):
        return "is not a regular file"
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if head not in _FONT_SIGNATURES:
        return "is not a TrueType or OpenType font file (.ttf, .otf or .ttc)"
    return None


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

    @field_validator("data_dir", mode="before")
    @classmethod
    def _data_dir_text(cls, value: Any) -> Any:
        return _no_nul(value) if isinstance(value, str) else value

    @field_validator("data_dir")
    @classmethod
    def _data_dir_usable(cls, value: Path) -> Path:
        problem = _data_dir_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _abandon_after_prompt(self) -> "KioskSection":
        if self.abandon_after_s <= self.prompt_after_s:
            raise ValueError("abandon_after_s must be greater than prompt_after_s")
        return self


def _thermometer_driver(value: str) -> str:
    # The names come from the driver registry (names only: no hardware library is imported).
    names = thermometer_driver_names()
    if value not in names:
        raise ValueError("must be one of " + ", ".join(f'"{name}"' for name in names))
    return value


class ThermometerSection(Section):
    driver: Annotated[str, AfterValidator(_thermometer_driver)] = "mlx90614"
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
    # EV compensation while a saturated phone screen is in view (Pi camera); 0 = off.
    screen_exposure_ev: Annotated[float, Field(ge=-3.0, le=0.0)] = -1.5
    path: PathText = ""
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

    _token_safe = field_validator("token")(_checked_token)


PlatformColour = Literal["green", "yellow", "red"]


class OtherPlatform(Section):
    """A platform of another region whose codes this kiosk recognises, picked by the code's form."""

    name: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._-]+$")]
    prefix: Annotated[str, Field(max_length=64)] = ""
    pattern: Annotated[str, Field(max_length=256)] = ""
    url: HttpUrl
    token: SecretStr = SecretStr("")

    _token_safe = field_validator("token")(_checked_token)

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

    if "PRIVATE KEY" in text:
        return "this is a private key: give the operator's public key (the private key stays with the operator)"
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
    ca_bundle: PathText = ""
    max_batch_bytes: Annotated[int, Field(ge=4096, le=8 * 1024 * 1024)] = 1024 * 1024
    max_retry_s: Annotated[float, Field(ge=1, le=3600)] = 120.0
    urgent_reasons: tuple[Annotated[str, Field(pattern=r"^[a-z_]+$")], ...] = ("yellow_code", "red_code", "fever")
    retention_days: Annotated[float, Field(ge=1, le=3650)] = 30.0
    min_free_mb: Annotated[int, Field(ge=1, le=1_000_000)] = 200

    _token_safe = field_validator("token")(_checked_token)


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
    font: PathText = ""
    temperature_unit: Literal["C", "F"] = "C"
    text_size: Literal["normal", "large"] = "normal"
    viewfinder: bool = True

    @field_validator("font")
    @classmethod
    def _font_file(cls, value: str) -> str:
        problem = font_problem(Path(value).expanduser()) if value else None
        if problem:
            raise ValueError(problem)
        return value


_CLOCK_RANGE = re.compile(r"(?:[01]\d|2[0-3]):[0-5]\d-(?:[01]\d|2[0-3]):[0-5]\d")


class SoundSection(Section):
    """Tones and spoken prompts (kiosk.sound), read from the running config at each prompt."""

    enabled: bool = True
    volume: Annotated[float, Field(ge=0, le=1)] = 0.8
    voice: bool = True
    zh_voice: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_+-]+$")] = "cmn"
    en_voice: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_+-]+$")] = "en"
    quiet_hours: str = ""
    quiet_volume: Annotated[float, Field(ge=0, le=1)] = 0.3
    quiet_voice: bool = False

    @field_validator("quiet_hours")
    @classmethod
    def _clock_range(cls, value: str) -> str:
        if value and not _CLOCK_RANGE.fullmatch(value):
            raise ValueError('must be "HH:MM-HH:MM" in 24-hour local time (e.g. "22:00-07:00"), or "" for none')
        if value and value[:5] == value[6:]:
            raise ValueError("must not start and end at the same time")
        return value


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
    sound: SoundSection = SoundSection()

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


def _annotation_types(annotation: Any) -> list[Any]:
    """The plain types inside an annotation: ``tuple[X, ...]`` and ``Annotated[Y, ...]`` give X and Y."""
    found = [annotation]
    for arg in typing.get_args(annotation):
        if isinstance(arg, type) or typing.get_origin(arg) is not None:
            found += _annotation_types(arg)
    return found


def _secret_fields(model: type[BaseModel]) -> set[str]:
    """The names of every SecretStr setting in the scheme, nested sections and lists included."""
    names: set[str] = set()
    for name, field in model.model_fields.items():
        for kind in _annotation_types(field.annotation):
            if kind is SecretStr:
                names.add(name)
            elif isinstance(kind, type) and issubclass(kind, BaseModel):
                names |= _secret_fields(kind)
    return names


SECRET_FIELDS = frozenset(_secret_fields(Config))
# Settings that can hold a secret by their name, whatever their type (trust.operator_key is public in
# intent, but a private key pasted there by mistake is not).
_SECRET_NAME = re.compile(r"token|key|passw|secret|credential", re.I)


def holds_secret(loc: tuple[Any, ...]) -> bool:
    """True when the setting at this key path can hold a secret: its value is never shown."""
    return any(isinstance(part, str) and (part in SECRET_FIELDS or _SECRET_NAME.search(part)) for part in loc)


def _describe(error: Mapping[str, Any]) -> str:
    path = ".".join(str(part) for part in error["loc"]) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"{path}: unknown key"
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    value = error.get("input")
    if holds_secret(tuple(error["loc"])):
        # Neither echoed nor quoted in the message: a token or a pasted private key stays out of
        # the terminal, the journal and `kiosk status`.
        text = value if isinstance(value, str) else str(value) if isinstance(value, (int, float)) else ""
        if len(text) >= 4 and text in message:
            message = message.replace(text, "(the value)")
        if kind == "string_type" and isinstance(value, (int, float)):
            message += " (write it in quotes)"
        return f"{path}: {message}"
    # A URL is not echoed back: a mistaken one may hold a password.
    if kind not in ("missing", "model_type") and not path.endswith("url") and not isinstance(value, (dict, list)):
        message += f" (got {value!r})"
    return f"{path}: {message}"


def parse(data: dict[str, Any], source: str = "<config>") -> Config:
    """Validate a decoded TOML document; raise ConfigError listing every problem with its key path."""
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, [_describe(e) for e in exc.errors()]) from None


def _nested_too_deep(text: str) -> str:
    """The key whose value nests arrays or inline tables deepest: named when the TOML reader gave up.

    A rough scan (strings and comments skipped, table headers followed), used only for the message.
    """
    table, key, where, depth, deepest = "", "", "", 0, 0
    quote = ""  # the open string's delimiter: ", ', \"\"\" or '''
    for line in text.splitlines():
        rest = line
        if not quote and depth == 0:
            header = re.match(r"\s*\[\[?\s*([^\[\]]+?)\s*\]\]?\s*(#.*)?$", line)
            if header:
                table = header.group(1)
                continue
            assignment = re.match(r"\s*([^=#\[{]+?)\s*=(.*)$", line)
            if assignment:
                key, rest = re.sub(r"\s*\.\s*", ".", assignment.group(1)), assignment.group(2)
        i = 0
        while i < len(rest):
            char = rest[i]
            if quote:
                if char == "\\" and quote[0] == '"':
                    i += 2
                    continue
                if rest.startswith(quote, i):
                    i += len(quote)
                    quote = ""
                    continue
            elif char in "\"'":
                quote = char * 3 if rest.startswith(char * 3, i) else char
                i += len(quote)
                continue
            elif char == "#":
                break
            elif char in "[{":
                depth += 1
                if depth > deepest:
                    deepest, where = depth, f"{table}.{key}" if table else key
            elif char in "]}":
                depth = max(0, depth - 1)
            i += 1
        if quote in ('"', "'"):  # a one-line string does not go on to the next line
            quote = ""
    return where or "(top level)"


def _toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [f"not valid TOML: {exc}"]) from None
    except RecursionError:
        # tomllib reads nested arrays and inline tables recursively; no real setting nests more than two.
        raise ConfigError(source, [f"{_nested_too_deep(text)}: arrays or inline tables nested too deeply "
                                   "to read (not a valid setting)"]) from None


def parse_text(text: str, source: str = "<config>") -> Config:
    return parse(_toml(text, source), source)


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
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), [f"not valid TOML: {exc}"]) from None
    data = _toml(text, str(path))
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
