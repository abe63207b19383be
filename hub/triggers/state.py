"""Reads and writes of trigger state; the functions the API calls are at the bottom."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from hub.store.store import Store
from hub.triggers.tables import TRIGGER_STATES as TRIGGERS


class TriggerStates:
    def __init__(self, store: Store):
        self.store = store
        self._ensured: set[tuple[str, str, str]] = set()

    def ensure_once(self, namespace: str, flow_id: str, trigger_id: str, kind: str) -> None:
        """:meth:`ensure`, skipped when this object already made sure of the row (a consumer
        firing round after round asks once, not once per round)."""
        key = (namespace, flow_id, trigger_id)
        if key not in self._ensured:
            self.ensure(namespace, flow_id, trigger_id, kind)
            self._ensured.add(key)

    def _key(self, namespace: str, flow_id: str, trigger_id: str) -> Any:
        return (TRIGGERS.c.namespace == namespace) & (TRIGGERS.c.flow_id == flow_id) & (
            TRIGGERS.c.trigger_id == trigger_id
        )

    def get(self, namespace: str, flow_id: str, trigger_id: str) -> dict[str, Any] | None:
        with self.store.engine.connect() as conn:
            row = conn.execute(select(TRIGGERS).where(self._key(namespace, flow_id, trigger_id))).first()
        return dict(row._mapping) if row else None

    def ensure(self, namespace: str, flow_id: str, trigger_id: str, kind: str) -> dict[str, Any]:
        row = self.get(namespace, flow_id, trigger_id)
        if row is not None:
            return row
        try:
            with self.store.engine.begin() as conn:
                conn.execute(insert(TRIGGERS).values(
                    namespace=namespace, flow_id=flow_id, trigger_id=trigger_id, type=kind,
                    disabled=False, fire_count=0, updated_at=time.time(),
                ))
        except IntegrityError:  # another process created it meanwhile
            pass
        row = self.get(namespace, flow_id, trigger_id)
        assert row is not None
        return row

    def update(self, namespace: str, flow_id: str, trigger_id: str, **values: Any) -> None:
        values["updated_at"] = time.time()
        with self.store.engine.begin() as conn:
            conn.execute(update(TRIGGERS).where(self._key(namespace, flow_id, trigger_id)).values(**values))

    def fired(self, namespace: str, flow_id: str, trigger_id: str, execution_id: str, count: int = 1,
              **values: Any) -> None:
        """``count`` executions started, ``execution_id`` the last of them."""
        values.update(last_fire_at=time.time(), last_execution_id=execution_id,
                      fire_count=TRIGGERS.c.fire_count + count, last_error=None)
        self.update(namespace, flow_id, trigger_id, **values)

    def failed(self, namespace: str, flow_id: str, trigger_id: str, message: str) -> None:
        self.update(namespace, flow_id, trigger_id, last_error=message[:4000], error_at=time.time())

    def list(self, namespace: str | None = None, flow_id: str | None = None) -> list[dict[str, Any]]:
        query = select(TRIGGERS)
        if namespace:
            query = query.where(TRIGGERS.c.namespace == namespace)
        if flow_id:
            query = query.where(TRIGGERS.c.flow_id == flow_id)
        query = query.order_by(TRIGGERS.c.namespace, TRIGGERS.c.flow_id, TRIGGERS.c.trigger_id)
        with self.store.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def disabled(self) -> set[tuple[str, str, str]]:
        with self.store.engine.connect() as conn:
            rows = conn.execute(select(TRIGGERS.c.namespace, TRIGGERS.c.flow_id, TRIGGERS.c.trigger_id)
                                .where(TRIGGERS.c.disabled.is_(True)))
            return {(r[0], r[1], r[2]) for r in rows}


# -- for the API ------------------------------------------------------------------------------------


def trigger_states(store: Store, namespace: str | None = None, flow_id: str | None = None) -> list[dict[str, Any]]:
    """Every trigger that has run or been seen: type, last/next fire, fire count, last error."""
    return TriggerStates(store).list(namespace, flow_id)


def set_trigger_disabled(store: Store, namespace: str, flow_id: str, trigger_id: str, disabled: bool,
                         kind: str = "unknown") -> dict[str, Any]:
    """Switch a trigger off (or on again) without editing the flow; returns its state."""
    states = TriggerStates(store)
    states.ensure(namespace, flow_id, trigger_id, kind)
    states.update(namespace, flow_id, trigger_id, disabled=disabled)
    row = states.get(namespace, flow_id, trigger_id)
    assert row is not None
    return row
