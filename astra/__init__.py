"""astra: a telemetry sidecar that batches a Discord bot's events into four Discord channels."""

__version__ = "0.1.0"
