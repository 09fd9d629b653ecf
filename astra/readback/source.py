"""The configured channels as readable history: one reader, each channel's history, webhooks.

Reading back needs what posting does not: the bot token (webhooks cannot list a channel)
and each channel's id. ``open_history`` says what is missing in one line.
"""

from __future__ import annotations

from collections.abc import Callable

from astra.config import Config, WebhookRef, history_gaps
from astra.errors import ConfigError
from astra.readback.history import ChannelHistory
from astra.sinks.discord_read import DiscordReader


def require_history(config: Config, channels: list[str], what: str) -> None:
    """Raise ``ConfigError`` naming the keys ``what`` needs to read ``channels`` back."""
    missing = history_gaps(config, channels)
    if missing:
        raise ConfigError(
            f"{config.path}: {what} reads the channels' history with the bot token; set "
            f"{', '.join(missing)} (webhooks cannot list a channel's messages)"
        )
    forums = [name for name in channels if config.channels[name].forum]
    if forums:
        raise ConfigError(
            f"{config.path}: channels.{forums[0]}.forum: {what} cannot read a forum channel "
            "back yet (its posts are spread over daily threads)"
        )


def unreadable(config: Config, channels: list[str]) -> dict[str, str]:
    """The channels recovery cannot read, and why (for the report's coverage line)."""
    why: dict[str, str] = {}
    for name in channels:
        channel = config.channels[name]
        if channel.channel_id is None:
            why[name] = f"no channels.{name}.id"
        elif channel.forum:
            why[name] = "a forum channel"
    return why


async def channel_histories(
    config: Config,
    reader: DiscordReader,
    channels: list[str],
    *,
    notice: Callable[[str], None],
) -> list[ChannelHistory]:
    """One history per channel, knowing astra's webhooks there (configured, or bot-made)."""
    histories = []
    for name in channels:
        channel = config.channels[name]
        assert channel.channel_id is not None
        webhooks: dict[int, WebhookRef] = {}
        if channel.webhook is not None:
            webhooks[channel.webhook.id] = channel.webhook
        webhooks.update(await reader.own_webhooks(channel.channel_id))
        histories.append(
            ChannelHistory(
                reader,
                name,
                channel.channel_id,
                webhooks,
                notice=notice,
                thread_id=channel.thread_id,
            )
        )
    return histories
