"""The shipped flows/ticket_stream.yaml against the real Kafka broker and the fake LLM server:
tickets on a topic become triaged executions, the triage goes back to Kafka, a heartbeat is
skipped by the condition and a ticket missing a field lands in the dead-letter topic."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.engine.runner import Engine
from hub.flow.loader import load_file
from hub.llm.client import LLMClient
from hub.llm.fake import FakeOpenAI
from hub.llm.settings import LLMSettings, ModelsConfig
from hub.prompts.registry import use_prompts_dir
from hub.settings import HubSettings
from tests.connectors.bus.brokers import require
from tests.connectors.bus.conftest import until

pytestmark = pytest.mark.anyio
REPO = Path(__file__).resolve().parents[3]
SERVERS = "127.0.0.1:9092"


def triage(request: dict[str, Any]) -> str:
    """The fake model's answer, from the ticket it is shown (tests run tickets concurrently)."""
    text = request["messages"][-1]["content"]
    billing = "charged" in text.lower()
    return json.dumps({"category": "billing" if billing else "bug", "urgency": "normal" if billing else "high",
                       "summary": "Charged twice." if billing else "Export is broken.",
                       "draft_reply": "Thanks, we are on it.", "suspicious": False})


@pytest.fixture
def llm(tmp_path: Path) -> Iterator[LLMClient]:
    fake = FakeOpenAI()
    fake.responder = triage
    with fake.serve() as api_base:
        models = ModelsConfig.model_validate({"default": "fast", "models": {
            "fast": {"model": "openai/gpt-4o-mini", "api_base": api_base, "api_key": "sk-test"}}})
        yield LLMClient(LLMSettings(models_file=tmp_path / "none.yaml", timeout=5, num_retries=1), models)


async def test_tickets_from_kafka_are_triaged_and_published_back(
    sqlite_store: Any, llm: LLMClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require("kafka")
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from hub.triggers.service import TriggerService

    monkeypatch.setenv("HUB_SECRET_KAFKA_BOOTSTRAP_SERVERS", SERVERS)
    run = uuid.uuid4().hex[:8]  # the topics outlive the test: this run's tickets are told apart by id
    tickets = {
        f"T-{run}-1": {"subject": "Charged twice", "body": "I was charged twice in May.", "tier": "pro"},
        f"T-{run}-2": {"subject": "Export broken", "body": "CSV export fails since Monday."},
    }
    settings = HubSettings(home=tmp_path / "home", prompts_dir=REPO / "prompts")
    engine = Engine(sqlite_store, settings, services={"llm": llm})
    with use_prompts_dir(REPO / "prompts"):
        engine.deploy(load_file(REPO / "flows" / "ticket_stream.yaml"))
        producer = AIOKafkaProducer(bootstrap_servers=SERVERS, acks="all")
        await producer.start()
        try:
            for ticket_id, ticket in tickets.items():
                await producer.send("support.tickets", json.dumps({"id": ticket_id, "email": "ana@example.com",
                                                                   **ticket}).encode())
            await producer.send("support.tickets", json.dumps({"id": f"T-{run}-hb"}).encode(),
                                headers=[("kind", b"heartbeat")])
            await producer.send("support.tickets", json.dumps({"id": f"T-{run}-3", "subject": "No email"}).encode())
            await producer.flush()
        finally:
            await producer.stop()

        service = TriggerService(engine, refresh=0.2)
        await service.start()
        try:
            def mine() -> list[dict[str, Any]]:
                rows = engine.store.list_executions(namespace="support", flow_id="ticket_stream", limit=1000)
                return [r for r in rows if r["inputs"]["ticket_id"].startswith(f"T-{run}")]

            await until(lambda: len(mine()) == 2 and all(r["ended_at"] for r in mine()), timeout=60,
                        message="the two tickets to be triaged")
        finally:
            await service.stop()

    rows = {r["inputs"]["ticket_id"]: r for r in mine()}
    assert {k: (r["state"], r["outputs"]["category"], r["outputs"]["urgency"]) for k, r in rows.items()} == {
        f"T-{run}-1": ("SUCCESS", "billing", "normal"), f"T-{run}-2": ("SUCCESS", "bug", "high"),
    }
    assert rows[f"T-{run}-1"]["inputs"]["customer_tier"] == "pro"
    assert rows[f"T-{run}-1"]["trigger"]["topic"] == "support.tickets"

    consumer = AIOKafkaConsumer("support.triaged", "support.tickets.dead", bootstrap_servers=SERVERS,
                                auto_offset_reset="earliest")
    await consumer.start()
    triaged: dict[str, Any] = {}
    dead: dict[str, str] = {}
    try:
        for _ in range(20):
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    body = json.loads(r.value)
                    if not str(body.get("ticket_id", body.get("id", ""))).startswith(f"T-{run}"):
                        continue
                    if r.topic == "support.triaged":
                        triaged[r.key.decode()] = body
                    else:
                        dead[body["id"]] = dict(r.headers)["hub-error"].decode()
            if len(triaged) == 2 and dead:
                break
    finally:
        await consumer.stop()
    assert triaged[f"T-{run}-1"]["category"] == "billing" and triaged[f"T-{run}-2"]["urgency"] == "high"
    assert list(dead) == [f"T-{run}-3"]  # the heartbeat was skipped, not dead-lettered
    assert "body" in dead[f"T-{run}-3"]  # the missing field is named
