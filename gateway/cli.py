"""The ``bucketdav`` command: parse flags, env and config; run the server on uvloop."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Coroutine, Sequence
from multiprocessing.connection import Connection
from typing import Any

from gateway import __version__
from gateway.ops.accesslog import configure_logging
from gateway.ops.malloc import one_arena
from gateway.ops.workers import WorkerLink
from gateway.server import serve
from gateway.settings import OPTIONS, ByteSize, Settings, SettingsError, load_settings

GROUP_TITLES = {
    "server": "server",
    "security": "security (TLS, users; users and shares themselves live in the config file)",
    "limits": "limits (each refusal is a short 4xx/503 naming the limit)",
    "operations": "operations (admin port, logs)",
    "store": "store (S3-compatible sources; credentials come from the AWS chain only)",
    "policy": "semantics (what clients may change)",
    "engine": "engine (memory, parts, caches)",
}

DESCRIPTION = """\
Serve an object store bucket (s3://, gs://, r2://) or a local folder over HTTP and WebDAV.

SOURCE is s3://bucket[/prefix], gs://bucket[/prefix], r2://bucket[/prefix] or a directory.
With no SOURCE and no [[share]] tables in the config file, the folder ./data is served.
Several sources, users and per-share settings are set in the TOML file given by --config
(see config/*.toml). Every option can also be set as BUCKETDAV_<NAME> in the environment
(BUCKETDAV_PORT=9000) or as a top-level key in that file.
Precedence: flags > env > file > defaults.
"""


def human_size(n: int) -> str:
    for unit, size in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bucketdav",
        description="An object store bucket as a filesystem over HTTP and WebDAV.",
    )
    parser.add_argument("--version", action="version", version=f"bucketdav {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve_parser = commands.add_parser(
        "serve",
        help="serve a bucket or folder",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve_parser.add_argument("source", nargs="?", metavar="SOURCE", help="what to serve")
    serve_parser.add_argument(
        "--config", metavar="FILE", help="TOML config file (env BUCKETDAV_CONFIG)"
    )
    groups = {name: serve_parser.add_argument_group(title) for name, title in GROUP_TITLES.items()}
    for option in OPTIONS:
        group = groups[option.group]
        if option.kind is bool:
            on = " (default: on)" if option.default else ""
            group.add_argument(
                option.flag,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=option.help + on + f" [{option.env}]",
            )
            continue
        shown = option.default
        if option.kind is ByteSize and option.default is not None:
            shown = human_size(option.default)
        shown_default = "" if option.default in (None, False) else f" (default: {shown})"
        choices = f" ({' | '.join(option.choices)})" if option.choices else ""
        group.add_argument(
            option.flag,
            type=str if option.choices else option.kind,
            choices=option.choices,
            default=None,
            metavar=option.metavar or option.kind.__name__.upper(),
            help=option.help + choices + shown_default + f" [{option.env}]",
        )
    return parser


def _run(main: Coroutine[Any, Any, int]) -> int:
    one_arena()  # before any thread: what the disk tier's threads allocate is reused by all
    try:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(main)
    except ImportError:  # pragma: no cover - uvloop is a dependency, but not on Windows
        return asyncio.run(main)


def run_worker(settings: Settings, index: int, conn: Connection) -> None:
    """A worker process of ``--workers N`` (started by the parent, in a fresh interpreter)."""
    configure_logging(settings.ops.log_level, settings.ops.log_format)
    raise SystemExit(_run(serve(settings, worker=WorkerLink(index, conn))))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command != "serve":
        parser.print_help()
        return 2
    flags: dict[str, Any] = {o.name: getattr(args, o.name) for o in OPTIONS}
    try:
        settings = load_settings(flags, args.source, args.config)
    except SettingsError as exc:
        print(f"bucketdav: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.ops.log_level, settings.ops.log_format)
    return _run(serve(settings, worker_target=run_worker))
