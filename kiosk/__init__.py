"""Checkpoint kiosk: IR temperature and a verified health code make PASS or REFUSE."""

__version__ = "0.1.0"
