"""Tools of the agent tests: python functions standing in for a CRM, each call appended to the
JSON-lines file ``AGENT_TOOL_LOG`` names (so a test in another process can count them)."""

from __future__ import annotations

import json
import os
from typing import Any


def _log(name: str, arguments: dict[str, Any]) -> None:
    with open(os.environ["AGENT_TOOL_LOG"], "a") as out:
        out.write(json.dumps({"tool": name, "arguments": arguments}) + "\n")


def search_contact(query: str) -> dict[str, Any]:
    _log("search_contact", {"query": query})
    return {"contacts": [{"id": "C-1", "name": "Ada Lovelace", "deal_id": "D-7"}]}


def draft_note(contact_id: str, text: str) -> dict[str, Any]:
    _log("draft_note", {"contact_id": contact_id, "text": text})
    return {"note_id": "N-1"}


def update_deal(deal_id: str, stage: str, amount: int) -> dict[str, Any]:
    _log("update_deal", {"deal_id": deal_id, "stage": stage, "amount": amount})
    return {"deal_id": deal_id, "stage": stage, "amount": amount, "updated": True}


def calls(path: str) -> list[dict[str, Any]]:
    try:
        with open(path) as lines:
            return [json.loads(line) for line in lines]
    except FileNotFoundError:
        return []
