"""Flows by name and revision, parsed once and cached by content hash."""

from __future__ import annotations

from hub.flow.loader import FlowLoader
from hub.flow.models import Flow
from hub.store.store import Store
from hub.tasks.registry import Registry


class FlowCatalog:
    def __init__(self, store: Store, registry: Registry | None = None):
        self.store = store
        self.loader = FlowLoader(registry)
        self._parsed: dict[tuple[str, str, int], Flow] = {}
        self._saved: dict[tuple[str, str, str], int] = {}

    def save(self, flow: Flow) -> int:
        """Store ``flow``'s source; a changed definition becomes a new revision."""
        key = (flow.namespace, flow.id, flow.content_hash)
        known = self._saved.get(key)
        if known is not None:
            return known
        revision, _ = self.store.save_flow(flow.namespace, flow.id, flow.source, flow.content_hash)
        self._parsed[(flow.namespace, flow.id, revision)] = flow
        self._saved[key] = revision
        return revision

    def cached(self, namespace: str, flow_id: str, revision: int) -> Flow | None:
        return self._parsed.get((namespace, flow_id, revision))

    def get(self, namespace: str, flow_id: str, revision: int | None = None) -> tuple[int, Flow]:
        if revision is not None and (namespace, flow_id, revision) in self._parsed:
            return revision, self._parsed[(namespace, flow_id, revision)]
        revision, source = self.store.get_flow_source(namespace, flow_id, revision)
        key = (namespace, flow_id, revision)
        flow = self._parsed.get(key)
        if flow is None:
            flow = self.loader.load_text(source, f"{namespace}.{flow_id}@{revision}")
            self._parsed[key] = flow
            self._saved.setdefault((namespace, flow_id, flow.content_hash), revision)
        return revision, flow

    def latest(self, namespace: str, flow_id: str) -> tuple[int, Flow, bool]:
        """The newest revision, parsed (from the cache when known), and whether the flow is
        disabled (in its file or through the API). One small query: the source is read only for a
        revision this process has not parsed yet."""
        head = self.store.flow_head(namespace, flow_id)
        revision, flow = self.get(namespace, flow_id, int(head["revision"]))
        return revision, flow, bool(head["disabled"]) or flow.disabled

    def resolve_ref(self, ref: str, current_namespace: str) -> tuple[str, str]:
        """``ns.flow`` or ``flow`` (same namespace) -> (namespace, flow id)."""
        if "." in ref:
            namespace, _, flow_id = ref.rpartition(".")
            return namespace, flow_id
        return current_namespace, ref
