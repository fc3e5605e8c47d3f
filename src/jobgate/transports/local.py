"""Commands and files on the gateway's own host."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

from jobgate.errors import TransientError
from jobgate.transports.base import CommandResult, Transport


class LocalTransport(Transport):
    async def run(
        self,
        argv: list[str],
        *,
        input: str | None = None,
        timeout: float = 60.0,
        cwd: str | None = None,
    ) -> CommandResult:
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=cwd,
                stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except FileNotFoundError as exc:
            raise TransientError(f"{argv[0]}: command not found") from exc
        try:
            out, err = await asyncio.wait_for(
                proc.communicate(input.encode() if input is not None else None), timeout
            )
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise TransientError(f"{argv[0]} did not answer within {timeout:.0f} s") from None
        return CommandResult(
            proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")
        )

    async def write_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_bytes(data)
        os.chmod(tmp, mode)
        tmp.replace(p)

    async def read_file(self, path: str, offset: int = 0, limit: int = -1) -> bytes:
        with open(path, "rb") as fh:
            fh.seek(offset)
            return fh.read(limit)

    async def put(self, local_path: str, remote_path: str) -> None:
        Path(remote_path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local_path, remote_path)

    async def get(self, remote_path: str, local_path: str) -> None:
        Path(local_path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(remote_path, local_path)

    async def exists(self, path: str) -> bool:
        return os.path.exists(path)
