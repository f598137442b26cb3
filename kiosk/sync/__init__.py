"""The event log on the device and its upload to the collector upstream."""
