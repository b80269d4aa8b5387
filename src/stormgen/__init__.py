"""stormgen: from an Event Storming model to a running event-sourced service."""

from __future__ import annotations

__version__ = "0.1.0"
