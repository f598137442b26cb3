"""The kiosk's exception tree: one root, so callers can catch everything the kiosk raises on purpose.

Each class also derives from the built-in exception it stands for, the way gpiozero's ``exc``
module does it, so code that knows nothing of the kiosk still catches it: a sensor fault is an
OSError, a bad setting a ValueError, a request past its deadline a TimeoutError.

    KioskError
    ├── HardwareError (OSError)         a device failed
    │   ├── SensorError                 the thermometer
    │   ├── CameraError                 the camera
    │   ├── LightsError                 the GPIO lights, buzzer and gate relay
    │   └── DisplayError                the screen
    ├── DecoderMissing (ImportError)    the QR decoder library is not installed
    ├── RenderError (OSError)           the spoken prompts could not be rendered (espeak-ng)
    ├── VerificationError               a health code could not be checked
    │   ├── PlatformFailure (OSError)   the issuing platform gave no usable answer
    │   ├── TrustError (ValueError)     a trust anchor cannot be used
    │   │   └── CertificateError        a signer certificate cannot be read
    │   └── Refused (kiosk.codes.finding)  an offline verifier refuses the code
    ├── NetworkError (OSError)          an HTTP request brought no usable answer
    │   ├── DeadlineExceeded (TimeoutError)
    │   └── AnswerTooLarge
    ├── SyncError                       the event log or its upload failed
    │   ├── StoreError (OSError)        the event log file
    │   └── UploadError (OSError)       a batch did not reach the collector
    ├── ConfigError (ValueError)        the config file breaks the scheme
    ├── SettingError (ValueError)       a valid setting cannot be used on this device
    ├── CalibrationError (ValueError)   a calibration the kiosk will not write
    └── UsageError (ValueError)         a command or call that makes no sense

The simulator's own errors (``UnknownPersonError``, ``ServeError``) live in ``kiosk.sim`` and
derive from this tree too.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kiosk.sync.client import Rejection


class KioskError(Exception):
    """Root of every error the kiosk raises on purpose."""


# --- hardware -------------------------------------------------------------------------------------


class HardwareError(KioskError, OSError):
    """A device did not work. An OSError: that is how the operating system reports a failing
    device (I2C, V4L2, GPIO), so code that handles I/O errors handles these too."""


class SensorError(HardwareError):
    """The thermometer did not answer, or answered something that cannot be a temperature."""


class CameraError(HardwareError):
    """The camera delivered no frame."""


class LightsError(HardwareError):
    """The GPIO pins of the lights, buzzer or gate relay cannot be opened."""


class DisplayError(HardwareError):
    """The screen cannot be opened or drawn on."""


class DecoderMissing(KioskError, ImportError):
    """The QR decoder library chosen in camera.decoder is not installed: an ImportError, which is
    what its absence is."""


class RenderError(KioskError, OSError):
    """The spoken prompts could not be rendered: espeak-ng is missing, does not run, or fails on a
    clip. An OSError, as a program that cannot be run (FileNotFoundError) or fails is one."""


# --- verification ---------------------------------------------------------------------------------


class VerificationError(KioskError):
    """A health code, or what vouches for it, could not be checked. No built-in base of its own:
    its kinds differ (a network failure, bad data, a refusal)."""


class PlatformFailure(VerificationError, OSError):
    """The platform could not be asked, or its answer made no sense; the message says why. An
    OSError like requests' own RequestException: a remote system failed to answer usefully."""


class TrustError(VerificationError, ValueError):
    """A trust anchor (certificate, key set, revocation list, trust list) cannot be used: a
    ValueError, since the data is not what it must be."""


class CertificateError(TrustError):
    """A signer certificate cannot be read, even leniently (a ValueError, as before it joined the
    tree, through TrustError)."""


# --- network --------------------------------------------------------------------------------------


class NetworkError(KioskError, OSError):
    """An HTTP request brought no usable answer; the message is a short cause that never quotes
    the URL, a token or what the server sent. An OSError like requests' RequestException."""


class DeadlineExceeded(NetworkError, TimeoutError):
    """The request did not complete within its deadline: a TimeoutError."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        super().__init__(f"no complete answer within {seconds:g} s")


class AnswerTooLarge(NetworkError):
    """The answer's body is larger than the request allows (cut off while it arrived)."""

    def __init__(self, limit: int):
        self.limit = limit
        super().__init__(f"answer larger than {limit} bytes")


# --- sync -----------------------------------------------------------------------------------------


class SyncError(KioskError):
    """The event log or its upload failed; events are kept for a later attempt."""


class StoreError(SyncError, OSError):
    """The event log cannot be opened, read or written; ``path`` names the file. An OSError: it is
    a file that fails."""

    def __init__(self, path: Path, problem: str):
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class UploadError(SyncError, OSError):
    """A batch did not reach the collector (an OSError, as NetworkError).

    ``status`` is the HTTP status when there was an answer; ``retry_after_s`` the collector's
    Retry-After (429 and 503 only); ``rejected`` the events it refused by name.
    """

    def __init__(self, cause: str, status: int | None = None, retry_after_s: float | None = None,
                 rejected: tuple[Rejection, ...] = ()):
        self.cause = cause
        self.status = status
        self.retry_after_s = retry_after_s
        self.rejected = rejected
        super().__init__(cause)


# --- config and usage -----------------------------------------------------------------------------


class ConfigError(KioskError, ValueError):
    """The config file is unreadable or breaks the scheme; `problems` holds one line per error.
    A ValueError: the values given are wrong."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


class SettingError(KioskError, ValueError):
    """A setting that passed the scheme cannot be used here (the font file is gone, "sim" outside
    the demo): a ValueError, like ConfigError, but found while starting a part."""


class CalibrationError(KioskError, ValueError):
    """The calibration was refused: nothing was written. A ValueError: the values given or
    measured cannot be trusted."""


class UsageError(KioskError, ValueError):
    """A command-line mistake or a request that makes no sense (the CLI reports it in one line,
    exit status 2): a ValueError, like argparse's own."""
