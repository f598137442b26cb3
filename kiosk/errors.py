"""The kiosk's exception tree: one root, so callers can catch everything the kiosk raises on purpose."""


class KioskError(Exception):
    """Root of every error the kiosk raises on purpose."""


class ConfigError(KioskError):
    """The config file is unreadable or breaks the scheme; `problems` holds one line per error."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


class SensorError(KioskError):
    """The thermometer did not answer, or answered something that cannot be a temperature."""


class CameraError(KioskError):
    """The camera delivered no frame."""


class VerifyError(KioskError):
    """A health code could not be verified (platform unreachable, malformed answer)."""
