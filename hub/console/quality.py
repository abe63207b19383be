"""A prompt's quality on its console page: the online scores of the evals attached to it (the
window's mean, the windows before it, and a chart of every recent score with the rolling mean),
and the latest candidate-vs-production comparison run (pass rates, regressions, improvements,
gates). Drawn on the server as plain SVG and tables: nothing loaded from elsewhere, readable
without script."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from hub.evals.online_store import OnlineStore
from hub.evals.results import EvalStore

RECENT = 200  # scores drawn on the chart (the newest)
WINDOWS = 6  # window means listed, newest first
SCANNED_RUNS = 200  # newest eval runs searched for the prompt's latest comparison
WIDTH, HEIGHT, PAD = 600, 160, 24


def online_panels(engine: Engine, prompt: str) -> list[dict[str, Any]]:
    """One panel per online eval attached to ``prompt``: its status, window means, chart."""
    store = OnlineStore(engine)
    panels = []
    for status in store.status():
        if status["prompt_name"] != prompt:
            continue
        newest = store.scores(status["name"], max(RECENT, status["window"] * WINDOWS))
        oldest_first = list(reversed(newest))
        panels.append({
            **status,
            "windows": window_means(newest, status["window"]),
            "chart": chart(oldest_first[-RECENT:], status["window"], status["alert_below"]),
            "latest": newest[:10],
        })
    return panels


def window_means(newest_first: list[dict[str, Any]], window: int) -> list[dict[str, Any]]:
    """The mean score and pass rate of consecutive windows, the newest first (a partial oldest one
    included); each with the time of its first and last score."""
    out = []
    for start in range(0, min(len(newest_first), window * WINDOWS), window):
        chunk = newest_first[start:start + window]
        out.append({
            "samples": len(chunk),
            "mean_score": sum(float(r["score"]) for r in chunk) / len(chunk),
            "pass_rate": sum(1 for r in chunk if r["passed"]) / len(chunk),
            "from": chunk[-1]["created_at"], "to": chunk[0]["created_at"],
        })
    return out


def chart(oldest_first: list[dict[str, Any]], window: int, alert_below: float | None) -> dict[str, Any] | None:
    """SVG geometry: a dot per score (oldest left), the rolling mean over ``window`` as a line,
    the alert limit as a dashed line. None without scores."""
    if not oldest_first:
        return None
    n = len(oldest_first)
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD

    def x(i: int) -> float:
        return round(PAD + (inner_w * i / (n - 1) if n > 1 else inner_w / 2), 1)

    def y(v: float) -> float:
        return round(PAD + inner_h * (1 - max(0.0, min(1.0, v))), 1)

    dots = [{"x": x(i), "y": y(float(r["score"])), "passed": bool(r["passed"]), "score": float(r["score"]),
             "at": r["created_at"]} for i, r in enumerate(oldest_first)]
    total, line = 0.0, []
    for i, r in enumerate(oldest_first):
        total += float(r["score"])
        if i >= window:
            total -= float(oldest_first[i - window]["score"])
        line.append(f"{x(i)},{y(total / min(i + 1, window))}")
    return {
        "width": WIDTH, "height": HEIGHT, "left": PAD, "right": WIDTH - PAD, "top": PAD, "bottom": HEIGHT - PAD,
        "dots": dots, "mean_line": " ".join(line), "limit_y": y(alert_below) if alert_below is not None else None,
        "count": n, "first_at": oldest_first[0]["created_at"], "last_at": oldest_first[-1]["created_at"],
    }


def latest_comparison(engine: Engine, prompt: str) -> dict[str, Any] | None:
    """The newest finished eval run of ``prompt`` that compared a candidate with another version
    (``hub eval --candidate ... --against ...``, or a gated promotion): the run and its comparison."""
    for run in EvalStore(engine).runs(None, SCANNED_RUNS):
        summary = run.get("summary") or {}
        if (run.get("target") or {}).get("prompt") == prompt and summary.get("comparison"):
            return {"run": run, "comparison": summary["comparison"]}
    return None
