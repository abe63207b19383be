"""Candidate against the version it would replace, on the same cases and models.

For each model the two columns are paired: per case the pass rates, the score delta and whether
the case regressed (passed more often before) or improved; in total the pass rates and mean
scores with their differences, cost and latency side by side, the classification metrics, a
paired bootstrap interval on the pass-rate difference (resampling cases; with repeats each case's
rate is the share of its runs that passed), and the eval file's ``gates`` judged.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any

from hub.evals.metrics import metric_value
from hub.evals.spec import Gates

BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 17  # the same runs give the same interval


def bootstrap_interval(deltas: list[float], samples: int = BOOTSTRAP_SAMPLES, level: float = 0.95) -> tuple[float, float] | None:
    """A percentile bootstrap interval of the mean of ``deltas`` (None with fewer than 2)."""
    if len(deltas) < 2:
        return None
    rng = random.Random(BOOTSTRAP_SEED)
    n = len(deltas)
    means = sorted(sum(rng.choice(deltas) for _ in range(n)) / n for _ in range(samples))
    tail = (1 - level) / 2
    return means[int(tail * samples)], means[min(samples - 1, int((1 - tail) * samples))]


def _per_case(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        grouped[r["case_id"]].append(r)
    out = {}
    for case_id, runs in grouped.items():
        n = len(runs)
        out[case_id] = {
            "index": runs[0]["case_index"],
            "rate": sum(1 for r in runs if r["passed"]) / n,
            "score": sum(r["score"] for r in runs) / n,
            "cost": sum(r["cost"] for r in runs) / n,
            "latency_ms": sum(r["latency_ms"] for r in runs) / n,
            "runs": n,
            "cached": all(r.get("cached") for r in runs),
        }
    return out


def _ratio(after: float | None, before: float | None) -> float | None:
    if after is None or before is None:
        return None
    return after / before if before else (1.0 if not after else None)


def pair(against: dict[str, Any], candidate: dict[str, Any], rows: list[dict[str, Any]], gates: Gates, repeat: int) -> dict[str, Any]:
    """The comparison of two variant summaries of one model."""
    before = _per_case([r for r in rows if r["variant"] == against["key"]])
    after = _per_case([r for r in rows if r["variant"] == candidate["key"]])
    cases: list[dict[str, Any]] = []
    regressions: list[str] = []
    improvements: list[str] = []
    deltas: list[float] = []
    for case_id in sorted(set(before) & set(after), key=lambda c: before[c]["index"]):
        b, a = before[case_id], after[case_id]
        change = "regression" if a["rate"] < b["rate"] else "improvement" if a["rate"] > b["rate"] else "same"
        (regressions if change == "regression" else improvements if change == "improvement" else []).append(case_id)
        deltas.append(a["rate"] - b["rate"])
        cases.append({
            "case_id": case_id, "change": change, "pass_rate": [b["rate"], a["rate"]], "score": [b["score"], a["score"]],
            "score_delta": a["score"] - b["score"], "cost": [b["cost"], a["cost"]], "latency_ms": [b["latency_ms"], a["latency_ms"]],
            "cached": [b["cached"], a["cached"]],
        })
    metrics = {}
    for name in sorted(set(against["metrics"]) | set(candidate["metrics"])):
        metrics[name] = [against["metrics"].get(name, {}).get("accuracy"), candidate["metrics"].get(name, {}).get("accuracy")]
    interval = bootstrap_interval(deltas)
    out: dict[str, Any] = {
        "model": candidate.get("model"), "against": against["key"], "candidate": candidate["key"],
        "pass_rate": [against["pass_rate"], candidate["pass_rate"]],
        "pass_rate_delta": candidate["pass_rate"] - against["pass_rate"],
        "mean_score": [against["mean_score"], candidate["mean_score"]],
        "score_delta": candidate["mean_score"] - against["mean_score"],
        "cost": [against["cost"], candidate["cost"]],
        "judge_cost": [against.get("judge_cost", 0.0), candidate.get("judge_cost", 0.0)],
        "latency_p50_ms": [against["latency_p50_ms"], candidate["latency_p50_ms"]],
        "latency_p95_ms": [against["latency_p95_ms"], candidate["latency_p95_ms"]],
        "accuracy": metrics, "regressions": regressions, "improvements": improvements, "cases": cases,
        "interval": list(interval) if interval else None, "repeat": repeat,
        "significant": interval is not None and (interval[0] > 0 or interval[1] < 0),
    }
    out["gates"] = _gates(gates, out, against, candidate)
    out["passed"] = all(g["passed"] for g in out["gates"]) and bool(candidate["thresholds_passed"])
    return out


def _gates(g: Gates, p: dict[str, Any], against: dict[str, Any], candidate: dict[str, Any]) -> list[dict[str, Any]]:
    checks: list[tuple[str, float, Any, bool]] = [("pass_rate_delta", g.min_pass_rate_delta, p["pass_rate_delta"], True)]
    if g.max_regressions is not None:
        checks.append(("regressions", g.max_regressions, len(p["regressions"]), False))
    if g.min_score_delta is not None:
        checks.append(("score_delta", g.min_score_delta, p["score_delta"], True))
    if g.min_accuracy is not None:
        for name, (_, now) in p["accuracy"].items():
            checks.append((f"{name}.accuracy", g.min_accuracy, now, True))
    for dotted, limit in g.metrics.items():
        now, then = metric_value(candidate["metrics"], dotted), metric_value(against["metrics"], dotted)
        checks.append((f"{dotted} delta", limit, None if now is None or then is None else now - then, True))
    if g.max_cost_ratio is not None:
        checks.append(("cost ratio", g.max_cost_ratio, _ratio(candidate["cost"], against["cost"]), False))
    if g.max_latency_ratio is not None:
        checks.append(("p95 latency ratio", g.max_latency_ratio, _ratio(candidate["latency_p95_ms"], against["latency_p95_ms"]), False))
    out = []
    for name, limit, value, minimum in checks:
        ok = value is not None and (value >= limit - 1e-12 if minimum else value <= limit + 1e-12)
        out.append({"name": name, "limit": limit, "value": value, "passed": ok, "kind": "min" if minimum else "max"})
    return out


def comparison(summary: dict[str, Any], rows: list[dict[str, Any]], gates: Gates, repeat: int) -> dict[str, Any]:
    """Pair every candidate column with the against column of the same model."""
    by_role: dict[str, dict[str | None, dict[str, Any]]] = defaultdict(dict)
    for v in summary["variants"]:
        if v.get("role"):
            by_role[v["role"]][v.get("model")] = v
    pairs = []
    for model, cand in by_role["candidate"].items():
        against = by_role["against"].get(model)
        if against is not None:
            pairs.append(pair(against, cand, rows, gates, repeat))
    first = next(iter(by_role["candidate"].values()), {})
    base = next(iter(by_role["against"].values()), {})
    return {
        "candidate": {"version": first.get("version"), "ref": first.get("ref")},
        "against": {"version": base.get("version"), "ref": base.get("ref")},
        "pairs": pairs,
        "passed": bool(pairs) and all(p["passed"] for p in pairs),
    }


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.1f}%"


def _usd(x: float | None) -> str:
    return "-" if x is None else f"${x:.4f}"


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x:.0f} ms"


def comparison_text(c: dict[str, Any]) -> list[str]:
    """The comparison as lines for the CLI."""
    cand, base = c["candidate"], c["against"]
    lines = ["", f"Candidate v{cand['version']} against v{base['version']} ({base['ref']}):"]
    for p in c["pairs"]:
        lines.append(f"  model {p['model']}:")
        b, a = p["pass_rate"]
        lines.append(f"    pass rate    {_pct(b):>8} → {_pct(a):>8}  ({p['pass_rate_delta'] * 100:+.1f} pts)")
        if p["interval"]:
            lo, hi = p["interval"]
            note = "significant" if p["significant"] else "not significant"
            lines.append(f"    95% bootstrap interval of the difference: [{lo * 100:+.1f}, {hi * 100:+.1f}] pts ({note})")
        sb, sa = p["mean_score"]
        lines.append(f"    mean score   {sb:>8.3f} → {sa:>8.3f}  ({p['score_delta']:+.3f})")
        lines.append(f"    cost         {_usd(p['cost'][0]):>8} → {_usd(p['cost'][1]):>8}  (judges {_usd(p['judge_cost'][0])} → {_usd(p['judge_cost'][1])})")
        lines.append(f"    p50 latency  {_ms(p['latency_p50_ms'][0]):>8} → {_ms(p['latency_p50_ms'][1]):>8}")
        lines.append(f"    p95 latency  {_ms(p['latency_p95_ms'][0]):>8} → {_ms(p['latency_p95_ms'][1]):>8}")
        for name, (mb, ma) in p["accuracy"].items():
            lines.append(f"    {name} accuracy {_pct(mb)} → {_pct(ma)}")
        lines.append(f"    regressions: {', '.join(p['regressions']) or 'none'}")
        lines.append(f"    improvements: {', '.join(p['improvements']) or 'none'}")
        for case in p["cases"]:
            if case["change"] != "same":
                (rb, ra), (sb2, sa2) = case["pass_rate"], case["score"]
                lines.append(f"      {case['change']:<11} {case['case_id']}: {_pct(rb)} → {_pct(ra)}, score {sb2:.2f} → {sa2:.2f}")
        for gate in p["gates"]:
            if not gate["passed"]:
                value = "-" if gate["value"] is None else f"{gate['value']:.4g}"
                lines.append(f"    gate missed: {gate['name']} is {value}, needs {'≥' if gate['kind'] == 'min' else '≤'} {gate['limit']:g}")
        lines.append(f"    verdict: {'pass' if p['passed'] else 'FAIL'}")
    if not c["pairs"]:
        lines.append("  no model was run for both versions")
    return lines
