"""`jobgate serve`: the long-running gateway: the supervisor and the REST API in one loop."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import os
import signal
import socket
from collections.abc import Iterator
from typing import Any

from jobgate.errors import SpecError
from jobgate.sdk import AsyncGateway

log = logging.getLogger("jobgate.serve")
M_ARENA_MAX = -8  # mallopt(3), <malloc.h>
GRACE_S = 5  # on SIGTERM, open requests (event and log streams) get this long to end


def serve_forever(options: dict[str, Any], host: str, port: int, api: bool) -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    _one_malloc_arena()
    logging.getLogger("alembic").setLevel(logging.WARNING)
    asyncio.run(_serve(options, host, port, api))  # stdlib loop: uvloop spawns 4x slower here


def _one_malloc_arena() -> None:
    """glibc gives threads that allocate their own malloc arenas (up to 8 per core), and
    memory freed in one is not reused by the others: with the store's worker threads that
    was 21 MB more resident with 100,000 jobs watched on PostgreSQL (docs/benchmarks.md).
    So one arena, before any thread starts, unless the operator set MALLOC_ARENA_MAX.
    Python's own allocator (objects under 512 bytes, under the GIL) is not affected."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc: nothing to tune
        return
    mallopt(M_ARENA_MAX, 1)


async def _serve(options: dict[str, Any], host: str, port: int, api: bool) -> None:
    # Listening before "running" is logged: a client that reads the log connects at once
    # (the backlog holds connections until uvicorn accepts them); --port 0 picks a free one.
    sock = _listen(host, port) if api else None
    stop = _stop_on_signals()  # from now on SIGINT or SIGTERM is a clean stop (exit 0)
    async with AsyncGateway(**options, supervise=True) as gw:
        cfg = gw.config
        where = f" api=http://{host}:{sock.getsockname()[1]}/api/v1" if sock else ""
        log.info(
            "gateway %s running: home=%s store=%s destinations=%s%s",
            gw.service.system.gateway_id or "-",
            cfg.home,
            _redact(cfg.database_url),
            ", ".join(cfg.destinations),
            where,
        )
        queues = _watch_queues(gw) if cfg.queues else None
        if sock is not None:
            import uvicorn

            from jobgate.api import create_app

            class _Server(uvicorn.Server):
                @contextlib.contextmanager
                def capture_signals(self) -> Iterator[None]:
                    # Ours, from the start (_serve): uvicorn's would raise the signal again
                    # once it has shut down, and a stop is clean, not an interruption.
                    yield

            server = _Server(
                uvicorn.Config(
                    create_app(gw.service),
                    loop="none",
                    lifespan="off",
                    log_level="warning",
                    access_log=False,
                    timeout_graceful_shutdown=GRACE_S,  # open event/log streams end then
                )
            )
            # Startup's objects (~120k: modules, models, routes) are never garbage: keep the
            # collector from re-scanning them in each full pass (~85 ms here, every ~0.6 s
            # under load, the API's whole p99).
            gc.collect()
            gc.freeze()
            serving = asyncio.ensure_future(server.serve(sockets=[sock]))
            await asyncio.wait(
                [serving, asyncio.ensure_future(stop.wait())], return_when="FIRST_COMPLETED"
            )
            server.should_exit = True  # open streams get GRACE_S, then the server returns
            await serving
        else:
            await stop.wait()
        if queues is not None:
            queues.cancel()
            await asyncio.gather(queues, return_exceptions=True)
        log.info("stopping; running jobs keep running and are re-attached on the next start")


def _watch_queues(gw: AsyncGateway) -> asyncio.Task[None]:
    from jobgate.queues import QueueWatcher

    log.info("watching queues: %s", ", ".join(gw.config.queues))
    return asyncio.create_task(QueueWatcher(gw.service, gw.config.queues).run())


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP, not create_server's 0: asyncio sets TCP_NODELAY only on accepted
    # sockets whose proto says TCP; without it each answer waited ~40 ms (Nagle + delayed
    # ACK), a third of the API's throughput.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise SpecError("port", f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


def _redact(url: str) -> str:
    head, sep, tail = url.partition("@")
    return f"{head.split(':')[0]}://***@{tail}" if sep else url
