"""discord.py extension: ``await bot.load_extension("astra.client.discordpy")``.

Captures, with no other code in the bot: messages (counts and metadata; content only when
opted in), prefix, slash and context-menu commands with duration and outcome, guild and
member joins and leaves, voice joins, leaves and moves, reactions, errors from ``on_error``,
command errors and app-command errors with tracebacks, gateway connect / disconnect /
resume / ready (per shard), gateway latency every minute, and (through
``astra.client.logging``) log records of warning and above.

It adds to the bot, it never replaces: events come through ``bot.add_listener``; the
handlers discord.py calls as attributes (``bot.on_error``, ``bot.on_command_error``,
``bot.tree.on_error``) and the two timing points (``bot.invoke``,
``bot.tree.interaction_check``) are wrapped so the bot's own implementation still runs,
unchanged, right after astra has taken note. A handler the bot assigns later (``@bot.event``,
``@bot.tree.error``) is wrapped again on the next gateway connect. ``teardown`` (unload)
restores everything.

A failing command is reported once: one ``command`` event with ``ok=False``, the error and
(when the bot's code raised it) the traceback; no separate ``error`` event, and the log line
discord.py writes for it is not forwarded again by the logging handler. An unknown command
(a typo after the prefix) is not reported at all, not even through that log line. A wrapper
left inside another extension's handler after unload only passes calls through.

Without the content opt-in, nothing the user typed leaves the process: errors that quote
the input (bad arguments, converter failures, ``CommandNotFound``) are sent as their class
only (``error_type``, no ``error`` text, no traceback), and discord.py's own DEBUG records
(gateway payloads with message text, HTTP request bodies) are kept from the logging handler
whatever ``ASTRA_LOG_LEVEL`` says.

Options: set ``bot.astra_options = Options(...)`` (or a dict of its fields) before loading,
or use the environment: ``ASTRA_ADDRESS``, ``ASTRA_SOURCE``, ``ASTRA_CAPTURE_CONTENT=1``,
``ASTRA_LOG_LEVEL`` (``WARNING`` by default, ``off`` to attach no logging handler),
``ASTRA_INGEST_TOKEN`` (the sidecar's ``ingest.token``: HTTP posts carry it, datagrams are
signed with it) and ``ASTRA_INGEST_CA`` (a PEM file to trust for an ``https://`` sidecar).
"""

try:
    from astra.client._capture import (
        DEFAULT_LATENCY_INTERVAL_S,
        ENV_CAPTURE_CONTENT,
        ENV_LOG_LEVEL,
        Options,
        get_telemetry,
        setup,
        teardown,
    )
except ModuleNotFoundError as exc:
    # discord.py is an optional extra: the sidecar never needs it, a bot using this does.
    if exc.name != "discord" and not (exc.name or "").startswith("discord."):
        raise
    raise ImportError(
        "astra.client.discordpy needs discord.py: pip install 'astra-sidecar[discordpy]'",
        name=__name__,
    ) from None

__all__ = [
    "DEFAULT_LATENCY_INTERVAL_S",
    "ENV_CAPTURE_CONTENT",
    "ENV_LOG_LEVEL",
    "Options",
    "get_telemetry",
    "setup",
    "teardown",
]
