"""Dataset-level metrics over the case runs of one variant: classification of one output field."""

from __future__ import annotations

from collections import Counter
from typing import Any

from hub.evals.assertions import dig
from hub.evals.spec import Classification

NONE_LABEL = "<none>"


def _label(value: Any) -> str:
    if value is None:
        return NONE_LABEL
    return value if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)


def classification(metric: Classification, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy, per-label precision / recall / F1 / support, and the confusion matrix
    (``confusion[true][predicted]``). Rows are stored results with ``expected`` and ``output``;
    a failed call predicts ``<none>``. Rows without a true label are skipped."""
    pairs: list[tuple[str, str]] = []
    for row in rows:
        has, truth = dig(row.get("expected"), metric.expected_path or metric.path)
        if not has or truth is None:
            continue
        found, predicted = dig(row.get("output"), metric.path) if row.get("error") is None else (False, None)
        pairs.append((_label(truth), _label(predicted if found else None)))
    labels = list(metric.labels or [])
    for truth, predicted in pairs:
        for lb in (truth, predicted):
            if lb not in labels:
                labels.append(lb)
    confusion = {t: dict.fromkeys(labels, 0) for t in labels}
    for truth, predicted in pairs:
        confusion[truth][predicted] += 1
    true_counts = Counter(t for t, _ in pairs)
    predicted_counts = Counter(p for _, p in pairs)
    per_label: dict[str, dict[str, float | int | None]] = {}
    for lb in labels:
        hits = confusion[lb][lb]
        precision = hits / predicted_counts[lb] if predicted_counts[lb] else None
        recall = hits / true_counts[lb] if true_counts[lb] else None
        f1 = (2 * precision * recall / (precision + recall)) if precision and recall else (0.0 if precision is not None and recall is not None else None)
        per_label[lb] = {"precision": precision, "recall": recall, "f1": f1, "support": true_counts[lb]}
    correct = sum(1 for t, p in pairs if t == p)
    return {
        "type": "classification",
        "samples": len(pairs),
        "accuracy": correct / len(pairs) if pairs else None,
        "labels": per_label,
        "confusion": confusion,
    }


def metric_value(metrics: dict[str, Any], dotted: str) -> float | None:
    """A threshold's value: ``category.accuracy``, ``category.recall.billing``, ``category.f1.bug``."""
    name, _, rest = dotted.partition(".")
    found = metrics.get(name)
    if found is None or not rest:
        return None
    what, _, label = rest.partition(".")
    if what == "accuracy" and not label:
        return found.get("accuracy")  # type: ignore[no-any-return]
    if what in ("precision", "recall", "f1") and label:
        value = found.get("labels", {}).get(label, {}).get(what)
        return None if value is None else float(value)
    return None
