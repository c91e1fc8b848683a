"""The web console (``/console/``)."""

from dockyard.console.app import create_console

__all__ = ["create_console"]
