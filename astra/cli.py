"""The ``astra`` command: ``run`` the sidecar, ``check`` a configuration, ``top`` to watch one,
``export`` and ``report`` to read the channels back."""

from __future__ import annotations

import argparse
import sys

from astra import __version__
from astra.config import CHANNELS, default_path, ingest_warnings, load
from astra.errors import ConfigError, SidecarUnreachable
from astra.redaction import Redactor

EXIT_USAGE = 2
DEFAULT_TOP_URL = "http://127.0.0.1:8787"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="astra", description="Telemetry sidecar for Discord bots."
    )
    parser.add_argument("--version", action="version", version=f"astra {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    top = commands.add_parser(
        "top",
        help="live view of a running sidecar",
        description="Show a running sidecar's figures, refreshed every second (Ctrl-C ends).",
    )
    top.add_argument(
        "--url",
        default=DEFAULT_TOP_URL,
        help=f"the sidecar's HTTP ingest address (default: {DEFAULT_TOP_URL})",
    )
    top.add_argument("--once", action="store_true", help="print one frame and exit")
    for name, text in (
        ("run", "run the sidecar until SIGTERM/SIGINT"),
        ("check", "validate the configuration and exit"),
        ("export", "print a channel's events, read back from Discord, as NDJSON"),
        ("report", "rebuild a day's report from the channels and show it"),
    ):
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument(
            "--config",
            default=None,
            help="configuration file (default: $ASTRA_CONFIG or ./config.toml)",
        )
        if name == "run":
            sub.add_argument(
                "--log-level",
                default="info",
                choices=["debug", "info", "warning", "error"],
                help="stderr verbosity (default: info)",
            )
        elif name == "export":
            _export_arguments(sub)
        elif name == "report":
            sub.add_argument(
                "--date", default=None, help="the report's day, YYYY-MM-DD (default: today so far)"
            )
            sub.add_argument("--post", action="store_true", help="also post it to #diagnostics")
    return parser


def _export_arguments(sub: argparse.ArgumentParser) -> None:
    when = "RFC 3339, a date (local midnight) or a span back from now (90m, 6h, 3d)"
    sub.add_argument(
        "--channel",
        required=True,
        choices=[*CHANNELS, "all"],
        help="the channel to read back, or all four merged in time order",
    )
    sub.add_argument("--since", default=None, help=f"from this time on: {when}")
    sub.add_argument("--until", default=None, help=f"before this time: {when}")
    sub.add_argument(
        "--kind", action="append", default=[], help="only events of this kind (repeatable)"
    )
    sub.add_argument(
        "--source", action="append", default=[], help="only events from this source (repeatable)"
    )
    sub.add_argument("--quiet", action="store_true", help="no progress line on stderr, only errors")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    # Zero local storage includes bytecode caches for modules imported from here on.
    sys.dont_write_bytecode = True
    args = _parser().parse_args(argv)
    if args.command == "top":
        return _top(args.url, args.once)
    path = args.config or default_path()
    try:
        config = load(path)
    except ConfigError as exc:
        print(f"astra: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.command == "check":
        modes = ", ".join(f"{name}={ch.mode}" for name, ch in config.channels.items())
        print(f"astra: {path}: ok ({modes})")
        for warning in ingest_warnings(config):
            print(f"astra: warning: {warning}", file=sys.stderr)
        return 0
    if args.command in ("export", "report"):
        return _read_back(config, args)
    return _run(config, args.log_level)


def _read_back(config: object, args: argparse.Namespace) -> int:
    # Imported here so `astra check` stays fast and light.
    from astra.config import Config
    from astra.history_commands import run_export, run_report

    assert isinstance(config, Config)
    redactor = Redactor(config.secrets())
    try:
        if args.command == "export":
            return run_export(
                config,
                args.channel,
                since=args.since,
                until=args.until,
                kinds=args.kind,
                sources=args.source,
                quiet=args.quiet,
            )
        return run_report(config, args.date, post=args.post)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the last line of defence: one line, redacted
        leaf = _first_leaf(exc)
        message = redactor.text(f"{type(leaf).__name__}: {leaf}")
        print(f"astra {args.command}: stopped by an internal error: {message}", file=sys.stderr)
        return 1


def _top(url: str, once: bool) -> int:
    from astra.top import run

    try:
        run(url, once=once)
    except SidecarUnreachable as exc:
        print(f"astra: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 0
    return 0


def _run(config: object, log_level: str) -> int:
    # Imported here so `astra check` stays fast and light.
    import anyio

    from astra.app import Sidecar
    from astra.config import Config
    from astra.logs import setup_logging

    assert isinstance(config, Config)
    redactor = Redactor(config.secrets())
    setup_logging(redactor, log_level)
    sidecar = Sidecar(config, redactor)
    try:
        return anyio.run(sidecar.run)
    except BaseException as exc:  # the last line of defence: one line, redacted
        leaf = _first_leaf(exc)
        if isinstance(leaf, KeyboardInterrupt | SystemExit):
            raise
        if isinstance(leaf, ConfigError):
            # Found at start, such as credentials Redis refuses: the user's to fix.
            print(f"astra: {redactor.text(str(leaf))}", file=sys.stderr)
            return EXIT_USAGE
        if isinstance(leaf, OSError):
            # Typically a port already in use.
            print(f"astra: cannot start: {redactor.text(str(leaf))}", file=sys.stderr)
        else:
            message = redactor.text(f"{type(leaf).__name__}: {leaf}")
            print(f"astra: stopped by an internal error: {message}", file=sys.stderr)
        return 1


def _first_leaf(exc: BaseException) -> BaseException:
    """The first real exception inside (possibly nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


if __name__ == "__main__":
    sys.exit(main())
