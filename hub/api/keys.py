"""``/v1/keys``: API keys, for admins (the CLI ``hub keys`` does the same on the database)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from hub.api.auth import require
from hub.api.context import Hub, get_hub
from hub.api.models import ApiKeyCreate, ApiKeyCreated, ApiKeyInfo, errors

router = APIRouter(prefix="/keys", tags=["keys"])


@router.get("", response_model=list[ApiKeyInfo], responses=errors(401, 403))
def list_keys(hub: Hub = Depends(get_hub), _: Any = Depends(require("admin"))) -> list[ApiKeyInfo]:
    return [ApiKeyInfo(**row) for row in hub.api_store.list_keys()]


@router.post("", response_model=ApiKeyCreated, status_code=201, responses=errors(401, 403, 422))
def create_key(body: ApiKeyCreate, hub: Hub = Depends(get_hub), _: Any = Depends(require("admin"))) -> ApiKeyCreated:
    """A new key; the secret is in the answer once and never again."""
    row, token = hub.api_store.create_key(body.name, list(body.scopes))
    return ApiKeyCreated(**row, key=token)


@router.delete("/{key_id}", response_model=ApiKeyInfo, responses=errors(401, 403, 404))
def revoke_key(key_id: str, hub: Hub = Depends(get_hub), _: Any = Depends(require("admin"))) -> ApiKeyInfo:
    return ApiKeyInfo(**hub.api_store.revoke_key(key_id))
