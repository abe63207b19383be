"""Tables of evals: runs, one row per case run (version × model × case × repeat), and the
promotions an eval run justified. Times are epoch seconds."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Column, Index, Text
from sqlmodel import Field, SQLModel


class EvalRun(SQLModel, table=True):
    """One run of an eval file: its variants, summary and verdict."""

    __tablename__ = "eval_runs"
    __table_args__ = (  # the list of runs, newest first (keyset paging)
        Index("ix_eval_runs_created", "created_at", "id"),
        Index("ix_eval_runs_name_created", "name", "created_at", "id"),
    )

    id: str = Field(primary_key=True)
    name: str = Field(index=True)
    file: str | None = None
    status: str = Field(description="running | done | failed")
    passed: bool | None = None
    target: Any = Field(default=None, sa_column=Column(JSON))
    variants: Any = Field(default=None, sa_column=Column(JSON))
    spec: Any = Field(default=None, sa_column=Column(JSON))
    summary: Any = Field(default=None, sa_column=Column(JSON))
    baseline_id: str | None = None
    error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: float
    finished_at: float | None = None


class EvalResult(SQLModel, table=True):
    """One case run: input, output, every assertion with its reason, and the calls it made."""

    __tablename__ = "eval_results"
    __table_args__ = (Index("ix_eval_results_run", "run_id", "variant"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: str
    variant: str
    prompt_name: str | None = None
    prompt_version: int | None = None
    prompt_hash: str | None = None
    model: str | None = None
    case_id: str
    case_index: int
    repeat: int = 1
    tags: Any = Field(default=None, sa_column=Column(JSON))
    input: Any = Field(default=None, sa_column=Column(JSON))
    expected: Any = Field(default=None, sa_column=Column(JSON))
    output: Any = Field(default=None, sa_column=Column(JSON))
    text: str | None = Field(default=None, sa_column=Column(Text))
    error: Any = Field(default=None, sa_column=Column(JSON))
    passed: bool
    score: float
    assertions: Any = Field(default=None, sa_column=Column(JSON))
    latency_ms: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = Field(0.0, description="The target's calls (as first asked, for answers from the cache).")
    judge_cost: float = Field(0.0, description="Judge and embedding calls of the assertions.")
    spent: float = Field(0.0, description="What this run paid for the case run (0 when every answer was cached).")
    cached: bool = Field(False, description="Every model answer of the case run came from the eval cache.")
    call_ids: Any = Field(default=None, sa_column=Column(JSON))
    execution_id: str | None = Field(default=None, description="The eval run id, or the flow execution.")
    trace_id: str | None = None
    created_at: float


class EvalPromotion(SQLModel, table=True):
    """A label moved onto a prompt version because an eval run passed."""

    __tablename__ = "eval_promotions"

    id: int | None = Field(default=None, primary_key=True)
    prompt_name: str = Field(index=True)
    label: str
    version: int
    previous: int | None = None
    run_id: str
    eval_file: str | None = None
    created_at: float


class OnlineEval(SQLModel, table=True):
    """An eval file attached to a prompt label: a share of its production calls is scored."""

    __tablename__ = "online_evals"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, description="The eval's name.")
    prompt_name: str = Field(index=True)
    label: str
    sample_rate: float
    window: int
    alert_below: float | None = None
    min_samples: int = 10
    alert_flow: str | None = None
    spec: Any = Field(default=None, sa_column=Column(JSON))
    file: str | None = None
    enabled: bool = True
    alerting: bool = False
    alerted_at: float | None = None
    created_at: float
    updated_at: float


class OnlineScore(SQLModel, table=True):
    """One sampled production call, scored by an attached eval's assertions."""

    __tablename__ = "online_scores"
    __table_args__ = (Index("ix_online_scores_eval", "eval_name", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    eval_name: str
    call_id: int | None = Field(default=None, index=True, description="The scored llm_calls row.")
    execution_id: str | None = Field(default=None, index=True)
    path: str | None = None
    trace_id: str | None = None
    prompt_name: str
    prompt_version: int | None = None
    model: str | None = None
    passed: bool
    score: float
    assertions: Any = Field(default=None, sa_column=Column(JSON))
    error: Any = Field(default=None, sa_column=Column(JSON))
    cost: float = Field(0.0, description="What the scoring's own judge and embedding calls cost.")
    created_at: float
