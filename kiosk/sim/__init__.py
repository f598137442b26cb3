"""Emulated hardware and the reference upstream, for the demo and the tests."""
