"""Run a command in its own process group, stream its output line by line, and kill the whole group
when the run is cancelled (the step's ``timeout``) and when the command ends (background children
it left behind)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import IO

from connectors.script.stream import LineSplitter, OutputSink

READ_CHUNK = 64 * 1024
DRAIN_SECONDS = 5.0  # how long the pipes may still deliver once the group is gone


async def run_process(argv: list[str], *, cwd: Path, env: dict[str, str], sink: OutputSink, grace: float) -> int:
    """Run ``argv`` and return its exit code (negative: killed by that signal).

    Cancelled, the group gets SIGTERM, then SIGKILL after ``grace`` seconds. Whatever happens, no
    process of the group outlives the call. (asyncio's own subprocess waits for the pipes to close
    too, which a background child holding them would delay forever: the exit is awaited apart.)
    """
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True,
    )
    readers = [
        asyncio.create_task(_pump(proc.stdout, "stdout", sink)),
        asyncio.create_task(_pump(proc.stderr, "stderr", sink)),
    ]
    exited = _exit_of(proc)
    try:
        return await asyncio.shield(exited)
    finally:
        if not exited.done():  # cancelled: ask the group to stop, then make it
            _signal_group(proc.pid, signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(exited), grace)
        _signal_group(proc.pid, signal.SIGKILL)  # leftovers: background children, a group that ignored SIGTERM
        await asyncio.shield(exited)
        _, pending = await asyncio.wait(readers, timeout=DRAIN_SECONDS)
        for task in pending:
            task.cancel()
        sink.close()


def _exit_of(proc: subprocess.Popen[bytes]) -> asyncio.Future[int]:
    """A future of the process's exit code, awaited by a thread of its own (not the default executor's,
    which a few long scripts would fill)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[int] = loop.create_future()

    def settle(code: int) -> None:
        if not future.done():
            future.set_result(code)

    def wait() -> None:
        loop.call_soon_threadsafe(settle, proc.wait())

    threading.Thread(target=wait, name=f"script-wait-{proc.pid}", daemon=True).start()
    return future


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def _pump(pipe: IO[bytes] | None, name: str, sink: OutputSink) -> None:
    if pipe is None:
        return
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=READ_CHUNK * 2)
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    try:
        splitter = LineSplitter()
        while chunk := await reader.read(READ_CHUNK):
            for line in splitter.feed(chunk):
                sink.line(name, line)
        for line in splitter.flush():
            sink.line(name, line)
    finally:
        transport.close()
