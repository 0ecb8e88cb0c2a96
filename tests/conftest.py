"""Shared pytest configuration."""

from fake_hub import fake_hub, fake_hub_server  # noqa: F401 - exposes the fixtures to all tests
