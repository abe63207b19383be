"""Flow revisions: a flow's source stored once per change, newest first."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import and_, func, insert, select

from hub.errors import NotFound
from hub.store.base import StoreBase
from hub.store.statements import FLOWS


class FlowStore(StoreBase):
    """The flow revisions of a store."""

    def save_flow(self, namespace: str, flow_id: str, source: str, content_hash: str) -> tuple[int, bool]:
        """Store a flow's source; returns ``(revision, created)``: a new revision only when it changed.
        A flow switched off through the API stays off on its new revision (in the same transaction)."""
        with self.engine.begin() as conn:
            row = conn.execute(
                select(FLOWS.c.revision, FLOWS.c.content_hash, FLOWS.c.deleted, FLOWS.c.disabled)
                .where(FLOWS.c.namespace == namespace, FLOWS.c.flow_id == flow_id)
                .order_by(FLOWS.c.revision.desc())
                .limit(1)
            ).first()
            if row is not None and row.content_hash == content_hash and not row.deleted:
                return int(row.revision), False
            revision = (row.revision if row else 0) + 1
            conn.execute(
                insert(FLOWS).values(
                    namespace=namespace,
                    flow_id=flow_id,
                    revision=revision,
                    content_hash=content_hash,
                    source=source,
                    disabled=bool(row is not None and row.disabled and not row.deleted),
                    deleted=False,
                    created_at=time.time(),
                )
            )
            return revision, True

    def flow_head(self, namespace: str, flow_id: str) -> dict[str, Any]:
        """Revision number and flags of a flow's newest revision, without its source: the hot path
        of starting executions reads the parsed flow from the catalog's cache."""
        return self.newest_flow_row(namespace, flow_id, FLOWS.c.revision, FLOWS.c.disabled, FLOWS.c.deleted)

    def newest_flow_row(self, namespace: str, flow_id: str, *columns: Any) -> dict[str, Any]:
        """``columns`` (default: all) of a flow's newest revision; NotFound when deleted or absent."""
        with self.auto.connect() as conn:
            row = conn.execute(
                select(*(columns or (FLOWS,)))
                .where(FLOWS.c.namespace == namespace, FLOWS.c.flow_id == flow_id)
                .order_by(FLOWS.c.revision.desc())
                .limit(1)
            ).first()
        if row is None or row.deleted:
            raise NotFound(f"flow {namespace}.{flow_id} not found")
        return dict(row._mapping)

    def get_flow_source(self, namespace: str, flow_id: str, revision: int | None = None) -> tuple[int, str]:
        query = select(FLOWS.c.revision, FLOWS.c.source, FLOWS.c.deleted).where(
            FLOWS.c.namespace == namespace, FLOWS.c.flow_id == flow_id
        )
        if revision is not None:
            query = query.where(FLOWS.c.revision == revision)
        with self.auto.connect() as conn:
            row = conn.execute(query.order_by(FLOWS.c.revision.desc()).limit(1)).first()
        if row is None or (revision is None and row.deleted):
            raise NotFound(f"flow {namespace}.{flow_id} not found" + (f" at revision {revision}" if revision else ""))
        return int(row.revision), str(row.source)

    def list_flows(self) -> list[dict[str, Any]]:
        latest = (
            select(FLOWS.c.namespace, FLOWS.c.flow_id, func.max(FLOWS.c.revision).label("revision"))
            .group_by(FLOWS.c.namespace, FLOWS.c.flow_id)
            .subquery()
        )
        query = select(FLOWS).join(
            latest,
            and_(
                FLOWS.c.namespace == latest.c.namespace,
                FLOWS.c.flow_id == latest.c.flow_id,
                FLOWS.c.revision == latest.c.revision,
            ),
        ).where(FLOWS.c.deleted.is_(False)).order_by(FLOWS.c.namespace, FLOWS.c.flow_id)
        with self.auto.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]
