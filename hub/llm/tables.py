"""Tables of the LLM layer: every call, and the response cache. Times are epoch seconds."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Column, Index, Text
from sqlmodel import Field, SQLModel


class LLMCall(SQLModel, table=True):
    """One request to a model (or one cache hit): what was asked, what came back, what it cost.

    ``attempt`` counts the step's attempts, ``round`` the repair rounds within one attempt (1 is
    the first question); ``retries`` and ``fallbacks`` are what the model client did for this round.
    """

    __tablename__ = "llm_calls"
    __table_args__ = (Index("ix_llm_calls_execution", "execution_id", "path"),)

    id: int | None = Field(default=None, primary_key=True)
    execution_id: str | None = None
    path: str | None = None
    task_id: str | None = None
    attempt: int = 1
    round: int = 1
    status: str = Field(description="ok | invalid | error | cached")
    prompt_name: str | None = None
    prompt_version: int | None = None
    prompt_hash: str | None = None
    model_requested: str | None = None
    model: str | None = Field(default=None, description="The alias (or model) that answered.")
    litellm_model: str | None = None
    provider: str | None = None
    fallback_used: bool = False
    retries: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    latency_ms: float = 0.0
    cached: bool = False
    request: Any = Field(default=None, sa_column=Column(JSON))
    response: str | None = Field(default=None, sa_column=Column(Text))
    errors: Any = Field(default=None, sa_column=Column(JSON))
    trace_id: str | None = None
    created_at: float


class LLMCacheEntry(SQLModel, table=True):
    """A cached response, keyed by a hash of model, messages and parameters."""

    __tablename__ = "llm_cache"

    key: str = Field(primary_key=True)
    model: str
    response: Any = Field(sa_column=Column(JSON))
    created_at: float
    expires_at: float = Field(index=True)
