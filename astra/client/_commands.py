"""``/astra`` slash commands: ask the sidecar for its health, errors and report; mute alerts.

The extension registers one app-command group, ``/astra``, when a control token is
configured (``ASTRA_CONTROL_TOKEN``, the sidecar's ``[control] token``). Each command asks
the sidecar's control endpoint over HTTP and answers ephemerally: only the member who asked
sees the answer. Discord shows the group to members with Manage Server by default; server
admins can change that under Server Settings → Integrations. The bot syncs its command tree
itself (``await bot.tree.sync()``), as it does for its own commands.

Everything shown comes from the sidecar and is escaped: no answer can ping anyone.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import discord
from discord import app_commands

from astra.units import fmt_duration, fmt_int

ENV_CONTROL_TOKEN = "ASTRA_CONTROL_TOKEN"
ENV_CONTROL_URL = "ASTRA_CONTROL_URL"
GROUP_NAME = "astra"
# Discord wants the first answer to an interaction within 3 s.
ASK_TIMEOUT_S = 2.5
COLOR_OK, COLOR_WARN, COLOR_BAD = 0x2ECC71, 0xF1C40F, 0xE74C3C
GROUPS_SHOWN = 8

Answer = Callable[[], Coroutine[Any, Any, discord.Embed]]


def control_url(explicit: str | None, telemetry_address: str) -> str:
    """Where the control endpoint is: the option, ``ASTRA_CONTROL_URL``, or the ingest host.

    The control routes live on the sidecar's HTTP ingest port, which defaults to the same
    port as UDP ingest: ``udp://host:port`` becomes ``http://host:port``.
    """
    url = explicit or os.environ.get(ENV_CONTROL_URL, "").strip()
    if not url:
        parts = urlsplit(telemetry_address)
        scheme = "https" if parts.scheme == "https" else "http"
        url = f"{scheme}://{parts.netloc}"
    return url.rstrip("/")


def text(value: object, limit: int = 200) -> str:
    """Sidecar text made safe for an embed: escaped markdown, no mentions, cut to ``limit``."""
    clean = discord.utils.escape_mentions(discord.utils.escape_markdown(str(value)))
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


class ControlClient:
    """Calls the sidecar's ``/v1/control/*`` routes with the control token."""

    def __init__(self, url: str, token: str, *, ca_file: str | None = None) -> None:
        self.url = url
        self._token = token
        self._ssl: ssl.SSLContext | None = (
            ssl.create_default_context(cafile=ca_file) if ca_file else None
        )
        self._session: aiohttp.ClientSession | None = None

    async def ask(self, path: str, body: dict[str, str] | None = None) -> tuple[int, Any]:
        """GET (or POST ``body`` to) ``/v1/control/<path>``; the status and decoded answer.

        Raises ``aiohttp.ClientError`` or ``TimeoutError`` when the sidecar cannot be reached.
        """
        if self._session is None:
            # No proxies from the environment: the sidecar is local.
            self._session = aiohttp.ClientSession(trust_env=False)
        headers = {"Authorization": f"Bearer {self._token}"}
        method = "GET" if body is None else "POST"
        async with self._session.request(
            method,
            f"{self.url}/v1/control/{path}",
            json=body,
            headers=headers,
            ssl=self._ssl if self._ssl is not None else True,
            timeout=aiohttp.ClientTimeout(total=ASK_TIMEOUT_S),
        ) as response:
            return response.status, await response.json(content_type=None)

    async def aclose(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None


def _problem(status: int, answer: Any) -> discord.Embed:
    error = answer.get("error") if isinstance(answer, dict) else None
    return discord.Embed(
        title="astra: the sidecar refused",
        description=text(f"{status}: {error or answer}", 1000),
        color=COLOR_BAD,
    )


class AstraCommands:
    """The ``/astra`` group and what each of its commands answers."""

    def __init__(self, client: ControlClient) -> None:
        self.client = client
        self.group = self._build_group()

    def _build_group(self) -> app_commands.Group:
        group = app_commands.Group(
            name=GROUP_NAME,
            description="Ask astra, the bot's telemetry sidecar",
            default_permissions=discord.Permissions(manage_guild=True),
            guild_only=True,
        )
        commands = self

        @group.command(name="health", description="Health score, what lowers it, and mutes")
        async def health(interaction: discord.Interaction) -> None:
            await commands.respond(interaction, commands.health)

        @group.command(name="errors", description="The top problem groups of the last hour")
        async def errors(interaction: discord.Interaction) -> None:
            await commands.respond(interaction, commands.errors)

        @group.command(name="report", description="Today's report so far")
        async def report(interaction: discord.Interaction) -> None:
            await commands.respond(interaction, commands.report)

        @group.command(name="mute", description="Mute an alert: it is still recorded, not pinged")
        @app_commands.describe(
            alert="A rule (cpu, process_down…) or one alert (rule:subject)",
            duration="How long: 30m, 2h, 1d (at most 7d)",
        )
        async def mute(interaction: discord.Interaction, alert: str, duration: str) -> None:
            who = str(interaction.user)
            await commands.respond(interaction, lambda: commands.mute(alert, duration, who))

        @mute.autocomplete("alert")
        async def firing_alerts(
            interaction: discord.Interaction, current: str
        ) -> list[app_commands.Choice[str]]:
            return await commands.suggest(current, "firing")

        @group.command(name="unmute", description="End an alert's mute")
        @app_commands.describe(alert="The alert as it was muted")
        async def unmute(interaction: discord.Interaction, alert: str) -> None:
            who = str(interaction.user)
            await commands.respond(interaction, lambda: commands.unmute(alert, who))

        @unmute.autocomplete("alert")
        async def muted_alerts(
            interaction: discord.Interaction, current: str
        ) -> list[app_commands.Choice[str]]:
            return await commands.suggest(current, "muted")

        return group

    async def respond(self, interaction: discord.Interaction, answer: Answer) -> None:
        """Answer ``interaction`` ephemerally with what ``answer`` builds (or why it could not)."""
        try:
            embed = await answer()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            embed = discord.Embed(
                title="astra: the sidecar did not answer",
                description=text(f"{self.client.url}: {type(exc).__name__}", 300),
                color=COLOR_BAD,
            )
        except (KeyError, TypeError, AttributeError) as exc:
            # A sidecar of another version: say so rather than fail the interaction.
            embed = discord.Embed(
                title="astra: unexpected answer from the sidecar",
                description=text(f"{type(exc).__name__}: {exc}", 300),
                color=COLOR_BAD,
            )
        await interaction.response.send_message(
            embed=embed, ephemeral=True, allowed_mentions=discord.AllowedMentions.none()
        )

    async def suggest(self, current: str, which: str) -> list[app_commands.Choice[str]]:
        """Alert names to offer while typing: those firing (and their rules), or those muted."""
        try:
            status, answer = await self.client.ask("health")
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return []  # no suggestions; the command itself will say what is wrong
        if status != 200 or not isinstance(answer, dict):
            return []
        names: list[str] = []
        for item in answer.get(which, []):
            name = str(item.get("alert", ""))
            names += [name, name.split(":", 1)[0]] if which == "firing" else [name]
        typed = current.lower()
        found = [n for n in dict.fromkeys(names) if n and typed in n.lower()]
        # Discord takes at most 25 choices of 1-100 characters.
        return [app_commands.Choice(name=n[:100], value=n[:100]) for n in found[:25]]

    async def health(self) -> discord.Embed:
        """``/astra health``."""
        status, answer = await self.client.ask("health")
        if status != 200:
            return _problem(status, answer)
        score = answer.get("score")
        color = COLOR_OK if score is None or score >= 80 else COLOR_WARN
        color = COLOR_BAD if score is not None and score < 50 else color
        embed = discord.Embed(
            title=f"🩺 health {score}/100" if score is not None else "🩺 health (collector off)",
            description=f"up {fmt_duration(answer.get('uptime_s', 0))} · "
            f"{fmt_int(answer.get('published', 0))} events · "
            f"{fmt_int(answer.get('pending', 0))} pending",
            color=color,
        )
        reasons = [f"• {text(r)}" for r in answer.get("reasons", [])[:8]]
        if reasons:
            embed.add_field(name="What lowers it", value="\n".join(reasons)[:1024], inline=False)
        firing = [
            f"• {'🔇 ' if a.get('muted') else ''}**{text(a['alert'], 100)}** {a['severity']}: "
            f"{text(a['message'])}"
            for a in answer.get("firing", [])[:8]
        ]
        embed.add_field(
            name="Firing", value="\n".join(firing)[:1024] or "nothing firing", inline=False
        )
        embed.add_field(name="Muted", value=self._mutes(answer.get("muted", [])), inline=False)
        return embed

    async def errors(self) -> discord.Embed:
        """``/astra errors``."""
        status, answer = await self.client.ask("errors")
        if status != 200:
            return _problem(status, answer)
        groups = answer.get("groups", [])
        embed = discord.Embed(
            title=f"🧯 problems of the last hour: {fmt_int(answer.get('total', 0))}",
            color=COLOR_BAD if groups else COLOR_OK,
            description="" if groups else "No errors, warnings or failed commands.",
        )
        for group in groups[:GROUPS_SHOWN]:
            embed.add_field(
                name=text(f"{group['label']} ×{fmt_int(group['count'])}", 250),
                value=f"{group['severity']} · last <t:{int(group['last'])}:R>\n"
                f"{text(group['sample'], 300)}",
                inline=False,
            )
        return embed

    async def report(self) -> discord.Embed:
        """``/astra report``."""
        status, answer = await self.client.ask("report")
        if status != 200 or "report" not in answer:
            return _problem(status, answer)
        report = answer["report"]
        total = sum(report.get("events", {}).values())
        embed = discord.Embed(
            title=f"📅 today so far · {text(report['day'], 40)}",
            description=f"since <t:{int(report['start'])}:t> · {fmt_int(total)} events · "
            f"{fmt_int(report.get('problem_total', 0))} problems · "
            f"{fmt_int(report.get('alerts_fired', 0))} alerts",
            color=COLOR_OK,
        )
        commands = [
            f"{text(c['name'], 60)} ×{fmt_int(c['count'])}"
            for c in report.get("top_commands", [])[:5]
        ]
        if commands:
            embed.add_field(name="Top commands", value="\n".join(commands), inline=True)
        problems = [
            f"{text(p['label'], 80)} ×{fmt_int(p['count'])}" for p in report.get("problems", [])[:5]
        ]
        if problems:
            embed.add_field(name="Top problems", value="\n".join(problems), inline=True)
        return embed

    async def mute(self, alert: str, duration: str, who: str) -> discord.Embed:
        """``/astra mute <alert> <duration>``."""
        body = {"alert": alert, "duration": duration, "by": who}
        status, answer = await self.client.ask("mute", body)
        if status != 200:
            return _problem(status, answer)
        return discord.Embed(
            title=f"🔇 muted {text(answer['alert'], 100)}",
            description=f"until <t:{int(answer['until'])}:f>: still recorded in #logs, "
            "no pings or notifications",
            color=COLOR_WARN,
        ).add_field(name="Muted now", value=self._mutes(answer["muted"]))

    async def unmute(self, alert: str, who: str) -> discord.Embed:
        """``/astra unmute <alert>``."""
        status, answer = await self.client.ask("unmute", {"alert": alert, "by": who})
        if status != 200:
            return _problem(status, answer)
        return discord.Embed(
            title=f"🔔 unmuted {text(answer['alert'], 100)}", color=COLOR_OK
        ).add_field(name="Muted now", value=self._mutes(answer["muted"]))

    @staticmethod
    def _mutes(mutes: list[dict[str, Any]]) -> str:
        lines = [
            f"• **{text(m['alert'], 100)}** until <t:{int(m['until'])}:t>"
            + (f" (by {text(m['by'], 60)})" if m.get("by") else "")
            for m in mutes[:10]
        ]
        return "\n".join(lines)[:1024] or "nothing muted"
