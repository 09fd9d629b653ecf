"""A discord.py bot that reports all of its activity to astra with one line.

The line is ``await self.load_extension("astra.client.discordpy")`` in ``setup_hook``:
messages, commands (with duration and errors), guild and member joins and leaves, voice,
reactions, errors, gateway connects and latency, and warning+ log records then reach the
sidecar. Nothing else in this file is about astra except the optional custom metric in
``!work``.

    export DISCORD_TOKEN=...                      # the bot's token
    export ASTRA_ADDRESS=udp://127.0.0.1:8787     # optional: this is the default
    export ASTRA_SOURCE=example-bot               # optional: how events name this bot
    export ASTRA_CONTROL_TOKEN=...                # optional: the sidecar's [control] token,
                                                  # adds /astra health|errors|report|mute|unmute
                                                  # (then run !sync once)
    astra run &                                   # the sidecar
    python examples/bot.py
"""

from __future__ import annotations

import os
import random
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from astra.client.discordpy import get_telemetry


class ExampleBot(commands.Bot):
    """A plain commands.Bot; astra is one extension among the bot's own."""

    def __init__(self) -> None:
        intents = discord.Intents.default()
        intents.message_content = True  # privileged: prefix commands need it
        intents.members = True  # privileged: member join / leave events need it
        super().__init__(command_prefix="!", intents=intents)

    async def setup_hook(self) -> None:
        """Load extensions once logged in (handlers defined with @bot.event are kept)."""
        await self.load_extension("astra.client.discordpy")


bot = ExampleBot()


@bot.command()
async def ping(ctx: commands.Context[Any]) -> None:
    """Answer with the gateway latency."""
    await ctx.send(f"pong ({bot.latency * 1000:.0f} ms)")


@bot.command()
async def fail(ctx: commands.Context[Any]) -> None:
    """Always fails: astra reports it once, as a failed command with its traceback."""
    raise RuntimeError("this command fails on purpose")


@bot.command()
async def work(ctx: commands.Context[Any], jobs: int = 1) -> None:
    """Send a metric of the bot's own through the extension's client."""
    telemetry = get_telemetry(bot)
    if telemetry is not None:
        telemetry.increment("jobs.done", jobs, unit="jobs")
    await ctx.send(f"did {jobs} job(s)")


@bot.command()
@commands.is_owner()
async def sync(ctx: commands.Context[Any]) -> None:
    """Register the slash commands with Discord (owner only; once after changing them)."""
    synced = await bot.tree.sync()
    await ctx.send(f"synced {len(synced)} application command(s)")


@bot.tree.command(description="Roll a die")
@app_commands.describe(sides="how many sides the die has")
async def roll(interaction: discord.Interaction, sides: int = 6) -> None:
    """A slash command: reported with its duration like the prefix ones."""
    await interaction.response.send_message(f"{random.randint(1, max(sides, 1))}")


@bot.event
async def on_command_error(ctx: commands.Context[Any], error: commands.CommandError) -> None:
    """The bot's own handler: astra adds to it, it does not replace it."""
    if isinstance(error, commands.CommandNotFound):
        return
    await ctx.send(f"that did not work: {error}")


def main() -> None:
    """Run the bot (``bot.run`` also sets up logging; astra's handler joins it)."""
    bot.run(os.environ["DISCORD_TOKEN"])


if __name__ == "__main__":
    main()
