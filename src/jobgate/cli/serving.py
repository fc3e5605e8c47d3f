"""`jobgate serve`: the long-running gateway: the supervisor and the REST API in one loop."""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import Any

from jobgate.sdk import AsyncGateway

log = logging.getLogger("jobgate.serve")


def serve_forever(options: dict[str, Any], host: str, port: int, api: bool) -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    asyncio.run(_serve(options, host, port, api))  # stdlib loop: uvloop spawns 4x slower here


async def _serve(options: dict[str, Any], host: str, port: int, api: bool) -> None:
    async with AsyncGateway(**options, supervise=True) as gw:
        cfg = gw.config
        where = f" api=http://{host}:{port}/api/v1" if api else ""
        log.info(
            "gateway %s running: home=%s store=%s destinations=%s%s",
            gw.supervisor.gateway_id if gw.supervisor else "-",
            cfg.home,
            _redact(cfg.database_url),
            ", ".join(cfg.destinations),
            where,
        )
        if api:
            import uvicorn

            from jobgate.api import create_app

            server = uvicorn.Server(
                uvicorn.Config(
                    create_app(gw),
                    host=host,
                    port=port,
                    loop="none",
                    lifespan="off",
                    log_level="warning",
                    access_log=False,
                )
            )
            # Startup's objects (~120k: modules, models, routes) are never garbage: keep the
            # collector from re-scanning them in each full pass (~85 ms here, every ~0.6 s
            # under load, the API's whole p99).
            gc.collect()
            gc.freeze()
            await server.serve()  # returns on SIGINT/SIGTERM
        else:
            await _until_signalled()
        log.info("stopping; running jobs keep running and are re-attached on the next start")


async def _until_signalled() -> None:
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def _redact(url: str) -> str:
    head, sep, tail = url.partition("@")
    return f"{head.split(':')[0]}://***@{tail}" if sep else url
