"""Journeys share the automation fixtures (settings with a signing key, webhook receiver)."""

from tests.automation.conftest import auto_settings, receiver

__all__ = ["auto_settings", "receiver"]
