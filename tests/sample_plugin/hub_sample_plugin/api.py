"""``GET /v1/sample/kinds``: the task kinds whose type starts with ``prefix``."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["sample"])


@router.get("/sample/kinds")
def kinds(prefix: str = "sample.") -> dict[str, list[str]]:
    from hub.tasks.registry import default_registry

    return {"kinds": [name for name in default_registry().types() if name.startswith(prefix)]}
