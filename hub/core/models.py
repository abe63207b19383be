"""Base models of the flow language that plugins extend (a trigger type's configuration)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"


class Strict(BaseModel):
    """A model of the flow language: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class TriggerBase(Strict):
    """What every trigger has; a trigger type's configuration model extends it."""

    id: str = Field(pattern=ID_PATTERN)
    description: str | None = None
    disabled: bool = False
    inputs: dict[str, Any] = Field(default_factory=dict, description="Inputs of the execution (templates).")
