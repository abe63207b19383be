"""Importable helpers for the LLM tests (validators, output models, runnables)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


def only_low_urgency(value: dict[str, Any]) -> str | None:
    return None if value.get("urgency") == "low" else "urgency must be low in tests"


class Lead(BaseModel):
    score: float = Field(ge=0, le=1)
    segment: Literal["enterprise", "mid_market", "smb", "not_a_fit"]
