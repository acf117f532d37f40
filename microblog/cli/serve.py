"""`web`, `worker` and `combined`: the commands that run until stopped (microblog/runtime.py)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Coroutine
from typing import Any

import uvloop

from microblog.cli.common import CommandError, add_command, argument
from microblog.config import Settings
from microblog.parsers import port_number, positive_int, queue_names


def _web(settings: Settings, args: argparse.Namespace) -> int:
    from microblog.runtime import run_web

    port = args.port or settings.port
    name = settings.name_instance("web", port)
    _listen_or_explain(
        lambda: run_web(settings, host=args.host, port=port, name=name), args.host, port
    )
    return 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from microblog.runtime import run_worker, worker_options

    options = worker_options(settings, args.queues, args.concurrency)
    name = settings.name_instance("worker")
    if args.metrics_port is None:
        _run(run_worker(settings, name=name, options=options))
        return 0
    address = (args.metrics_host, args.metrics_port)
    _listen_or_explain(
        lambda: run_worker(settings, name=name, options=options, metrics_address=address),
        *address,
    )
    return 0


def _combined(settings: Settings, args: argparse.Namespace) -> int:
    from microblog.runtime import run_combined, worker_options

    port = args.port or settings.port
    name = settings.name_instance("combined", port)
    options = worker_options(settings, None, args.concurrency)
    _listen_or_explain(
        lambda: run_combined(settings, host=args.host, port=port, name=name, options=options),
        args.host,
        port,
    )
    return 0


def _run(main: Coroutine[Any, Any, None]) -> None:
    """Run a long-lived process on uvloop: its event loop and transports, written in C, take
    about a tenth off the CPU time of every request (docs/benchmarks.md)."""
    uvloop.run(main)


def _listen_or_explain(start: Callable, host: str, port: int) -> None:
    try:
        _run(start())
    except OSError as error:
        if error.errno is None or isinstance(error, ConnectionError):
            raise
        raise CommandError(f"cannot listen on {host}:{port}: {error.strerror}") from None


def _add_listen_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument(
        "--port",
        type=argument(port_number),
        default=None,
        help="port to listen on (default: $PORT, else 3000)",
    )


def _add_concurrency_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--concurrency",
        type=argument(positive_int),
        default=None,
        help="jobs run at the same time (default: $WORKER_CONCURRENCY, else 10)",
    )


def add_serve_commands(commands: Any) -> None:
    web = add_command(
        commands, "web", _web, "serve HTTP only (jobs wait for a worker or combined process)"
    )
    _add_listen_options(web)
    worker = add_command(commands, "worker", _worker, "run background jobs until stopped")
    worker.add_argument(
        "--queues",
        type=argument(queue_names),
        default=None,
        help="comma-separated queues (default: all)",
    )
    _add_concurrency_option(worker)
    worker.add_argument(
        "--metrics-port",
        type=argument(port_number),
        default=None,
        help="serve /metrics for Prometheus on this port (default: none)",
    )
    worker.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        help="address to serve /metrics on, with --metrics-port (127.0.0.1)",
    )
    combined = add_command(
        commands, "combined", _combined, "serve HTTP and run background jobs in one process"
    )
    _add_listen_options(combined)
    _add_concurrency_option(combined)
