"""Every example flow of the bus pages loads (the docs stay true)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hub.flow.loader import load_text

ROOT = Path(__file__).resolve().parents[3]
PAGES = [ROOT / "docs" / "triggers.md", ROOT / "docs" / "connectors" / "buses.md"]


def examples() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for block in re.findall(r"```yaml\n(.*?)```", page.read_text(), re.S):
            if block.startswith("id: ") and re.search(r"type: (kafka|nats|amqp|mqtt)\b", block):
                found.append((f"{page.name}:{block.splitlines()[0]}", block))
    return found


@pytest.mark.parametrize(("where", "text"), examples(), ids=[w for w, _ in examples()])
def test_the_bus_examples_load(where: str, text: str) -> None:
    flow = load_text(text, where)
    assert flow.triggers or any(t.type.split(".")[0] in ("kafka", "nats", "amqp", "mqtt") for t in flow.tasks)


def test_there_is_an_example_for_each_bus() -> None:
    text = "\n".join(block for _, block in examples())
    for kind in ("type: kafka", "type: nats", "type: amqp", "type: mqtt", "type: kafka.produce",
                 "type: nats.publish", "type: amqp.publish", "type: mqtt.publish"):
        assert kind in text, kind
