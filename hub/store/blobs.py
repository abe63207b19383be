"""Blobs: large values (step outputs past the inline limit, snapshots) stored apart."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from sqlalchemy import insert, select

from hub.errors import NotFound
from hub.store.base import StoreBase
from hub.store.json_text import json_bytes, json_text
from hub.store.statements import BLOBS


class BlobStore(StoreBase):
    """The blobs of a store, and step outputs that may be one."""

    def put_blob(self, data: bytes, execution_id: str | None = None, content_type: str = "application/json") -> str:
        blob_id = uuid.uuid4().hex
        with self.engine.begin() as conn:
            conn.execute(
                insert(BLOBS).values(
                    id=blob_id,
                    execution_id=execution_id,
                    content_type=content_type,
                    size=len(data),
                    data=data,
                    created_at=time.time(),
                )
            )
        return blob_id

    def get_blob(self, blob_id: str) -> bytes:
        with self.auto.connect() as conn:
            row = conn.execute(select(BLOBS.c.data).where(BLOBS.c.id == blob_id)).first()
        if row is None:
            raise NotFound(f"blob {blob_id} not found")
        return bytes(row[0])

    def output_values(self, output: Any, execution_id: str | None) -> dict[str, Any]:
        """The ``output`` and ``output_ref`` columns of a step run for ``output``: inline, or a
        reference to a blob written now when its JSON is longer than the inline limit (bytes)."""
        if output is None:
            return {"output": None, "output_ref": None}
        encoded = json_bytes(output)
        if len(encoded) <= self.inline_limit:
            return {"output": output, "output_ref": None}
        ref = self.put_blob(encoded, execution_id=execution_id)
        return {"output": {"$blob": ref, "size": len(encoded)}, "output_ref": ref}

    def encoded_output(self, output: Any, execution_id: str | None) -> tuple[str, str | None]:
        """The ``output`` column's JSON text and ``output_ref`` for ``output`` (serialised once):
        inline, or a reference to a blob written now when it is longer than the inline limit."""
        encoded = json_bytes(output)
        if output is None or len(encoded) <= self.inline_limit:
            return encoded.decode(), None
        ref = self.put_blob(encoded, execution_id=execution_id)
        return json_text({"$blob": ref, "size": len(encoded)}), ref

    def load_output(self, row: dict[str, Any]) -> Any:
        if row.get("output_ref"):
            return json.loads(self.get_blob(row["output_ref"]))
        return row.get("output")
