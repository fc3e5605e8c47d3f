"""`jobgate serve`: the long-running gateway process."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

from jobgate.sdk import AsyncGateway


def serve_forever(options: dict[str, Any]) -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(_serve(options))  # the stdlib loop: uvloop spawns processes 4x slower here


async def _serve(options: dict[str, Any]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with AsyncGateway(**options, supervise=True) as gw:
        cfg = gw.config
        log = logging.getLogger("jobgate.serve")
        log.info(
            "gateway %s running: home=%s store=%s destinations=%s",
            gw.supervisor.gateway_id if gw.supervisor else "-",
            cfg.home,
            _redact(cfg.database_url),
            ", ".join(cfg.destinations),
        )
        await stop.wait()
        log.info("stopping; running jobs keep running and are re-attached on the next start")


def _redact(url: str) -> str:
    head, sep, tail = url.partition("@")
    return f"{head.split(':')[0]}://***@{tail}" if sep else url
