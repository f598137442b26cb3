"""The kiosk's exception tree: every error the kiosk raises on purpose is a KioskError, and also the
built-in it stands for, so code that knows nothing of the kiosk (``except OSError``) still catches it.
The faults are provoked through the real code paths: the MLX90614 driver on the emulated bus, a
request to a port nobody listens on, a broken config file, a missing event log."""

from __future__ import annotations

import ast
import builtins
import inspect
from pathlib import Path

import pytest

import kiosk
from kiosk import errors
from kiosk.codes.platform_http import post_json
from kiosk.config import UpstreamSection, load
from kiosk.errors import (
    ConfigError,
    KioskError,
    PlatformFailure,
    SensorError,
    SettingError,
    StoreError,
    UploadError,
)
from kiosk.http import guard_session
from kiosk.sensors.mlx90614 import MLX90614
from kiosk.sensors.scanner import Scanner
from kiosk.sim.mlx90614 import MLX90614Chip, SimI2C
from kiosk.sync.client import UpstreamClient
from kiosk.sync.store import EventStore
from sync_helpers import closed_port, make_event

KIOSK_DIR = Path(kiosk.__file__).parent
TREE = [cls for _, cls in inspect.getmembers(errors, inspect.isclass) if issubclass(cls, BaseException)]
# Branches that group kinds too different for one built-in base.
WITHOUT_BUILTIN = {"KioskError", "VerificationError", "SyncError"}
BUILTIN_EXCEPTIONS = {name for name, value in vars(builtins).items()
                      if isinstance(value, type) and issubclass(value, BaseException)}


def sources() -> list[Path]:
    return sorted(KIOSK_DIR.rglob("*.py"))


def test_every_class_in_the_tree_is_a_kiosk_error_and_a_builtin() -> None:
    assert len(TREE) > 15
    for cls in TREE:
        assert issubclass(cls, KioskError), cls
        if cls.__name__ in WITHOUT_BUILTIN:
            continue
        standing_for = [base for base in cls.__mro__
                        if base.__module__ == "builtins" and base not in (Exception, BaseException, object)]
        assert standing_for, f"{cls.__name__} stands for no built-in exception"
        assert cls.__doc__ and cls.__doc__.strip(), f"{cls.__name__} has no docstring"


@pytest.mark.parametrize(("name", "builtin"), [
    ("SensorError", OSError), ("CameraError", OSError), ("LightsError", OSError), ("DisplayError", OSError),
    ("DecoderMissing", ImportError), ("RenderError", OSError), ("PlatformFailure", OSError), ("TrustError", ValueError),
    ("CertificateError", ValueError), ("NetworkError", OSError), ("DeadlineExceeded", TimeoutError),
    ("AnswerTooLarge", OSError), ("StoreError", OSError), ("UploadError", OSError), ("ConfigError", ValueError),
    ("SettingError", ValueError), ("CalibrationError", ValueError), ("UsageError", ValueError),
])
def test_each_error_is_the_builtin_callers_catch(name: str, builtin: type[BaseException]) -> None:
    assert issubclass(getattr(errors, name), builtin)


def test_no_module_raises_a_bare_kiosk_error() -> None:
    """Each raise names its proper class, so a caller can tell a sensor fault from a bad setting."""
    bare = []
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if not isinstance(node, ast.Raise) or node.exc is None:
                continue
            raised = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            name = raised.attr if isinstance(raised, ast.Attribute) else getattr(raised, "id", None)
            if name == "KioskError":
                bare.append(f"{path.relative_to(KIOSK_DIR.parent)}:{node.lineno}")
    assert bare == []


def test_every_public_exception_class_joins_the_tree() -> None:
    """A public exception class anywhere in the kiosk derives from a class of the tree, not only
    from built-ins (private ones, used for control flow inside one module, may)."""
    outside = []
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if not isinstance(node, ast.ClassDef) or node.name.startswith("_") or node.name == "KioskError":
                continue
            bases = [base.id if isinstance(base, ast.Name) else getattr(base, "attr", "") for base in node.bases]
            if bases and all(base in BUILTIN_EXCEPTIONS for base in bases):
                outside.append(f"{path.relative_to(KIOSK_DIR.parent)}:{node.lineno} {node.name}")
    assert outside == []


# --- through the real code paths ------------------------------------------------------------------


def test_an_unplugged_thermometer_is_an_os_error_and_a_kiosk_error() -> None:
    bus = SimI2C()
    chip = bus.attach(MLX90614Chip(ambient_c=22.0, object_source=lambda: 36.5))
    sensor = MLX90614(bus, retry_pause_s=0.0, read_pause_s=0.0, sleep=lambda _: None)
    assert sensor.read().object_c == pytest.approx(36.5, abs=0.05)
    chip.plugged = False
    with pytest.raises(OSError) as caught:
        sensor.read()
    assert isinstance(caught.value, KioskError) and isinstance(caught.value, SensorError)
    assert "no thermometer answers at I2C address 0x5A" in str(caught.value)


def test_a_missing_i2c_bus_is_reported_as_itself_not_retried_as_a_read_error() -> None:
    """"No I2C bus" is a SensorError, and so an OSError: the driver's own OSError handling must
    let it through unchanged, and not take it for a failed transfer worth retrying."""
    opened = []

    def no_bus() -> object:
        opened.append(1)
        raise SensorError("no I2C bus (RuntimeError: no board): enable I2C")

    sensor = MLX90614(None, open_bus=no_bus, retry_pause_s=0.0, read_pause_s=0.0, sleep=lambda _: None)
    with pytest.raises(SensorError, match=r"^no I2C bus \(RuntimeError: no board\): enable I2C$"):
        sensor.read()
    assert len(opened) == 1


def test_a_platform_nobody_listens_on_is_an_os_error() -> None:
    url = f"http://127.0.0.1:{closed_port()}/platform/verify"
    with pytest.raises(OSError) as caught:
        post_json(guard_session(), url, {"code": "x"}, {}, 1.0, 1024)
    assert isinstance(caught.value, PlatformFailure) and isinstance(caught.value, KioskError)
    assert str(caught.value) == "platform: connection refused"


def test_an_upload_to_a_collector_nobody_listens_on_is_an_os_error() -> None:
    client = UpstreamClient(UpstreamSection(url=f"http://127.0.0.1:{closed_port()}", timeout_s=1.0))
    with pytest.raises(OSError) as caught:
        client.post_events([make_event(1)])
    assert isinstance(caught.value, UploadError) and caught.value.status is None


def test_a_missing_event_log_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(OSError) as caught:
        EventStore(tmp_path / "nowhere" / "events.db", readonly=True)
    assert isinstance(caught.value, StoreError) and caught.value.path == tmp_path / "nowhere" / "events.db"


def test_a_broken_config_file_is_a_value_error(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[upstream]\ntimeout_s = -1\n", encoding="utf-8")
    with pytest.raises(ValueError) as caught:
        load(path)
    assert isinstance(caught.value, ConfigError) and caught.value.problems


def test_an_unknown_decoder_setting_is_a_value_error() -> None:
    with pytest.raises(ValueError) as caught:
        Scanner("qrzilla")  # type: ignore[arg-type]
    assert isinstance(caught.value, SettingError)
    assert str(caught.value).startswith("camera.decoder: unknown decoder 'qrzilla'")

