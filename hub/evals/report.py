"""The summary of a run (per variant, thresholds judged), the cases that differ between
variants, the comparison with a baseline run, and the text table the CLI prints."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from hub.evals.metrics import classification, metric_value
from hub.evals.spec import EvalSpec, Thresholds


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _thresholds(t: Thresholds, stats: dict[str, Any]) -> list[dict[str, Any]]:
    checks: list[tuple[str, float, Any, bool]] = []  # name, limit, value, is a minimum

    def add(name: str, limit: float | None, value: Any, minimum: bool) -> None:
        if limit is not None:
            checks.append((name, limit, value, minimum))

    add("pass_rate", t.pass_rate, stats["pass_rate"], True)
    add("mean_score", t.mean_score, stats["mean_score"], True)
    add("max_p95_latency_ms", t.max_p95_latency_ms, stats["latency_p95_ms"], False)
    add("max_cost", t.max_cost, stats["cost"], False)
    add("max_flaky", t.max_flaky, len(stats["flaky"]), False)
    add("max_errors", t.max_errors, stats["errors"], False)
    for name, limit in t.metrics.items():
        add(name, limit, metric_value(stats["metrics"], name), True)
    if not checks:  # an eval without thresholds asks every case run to pass
        add("pass_rate", 1.0, stats["pass_rate"], True)
    out = []
    for name, limit, value, minimum in checks:
        ok = value is not None and (value >= limit if minimum else value <= limit)
        out.append({"name": name, "limit": limit, "value": value, "passed": ok, "kind": "min" if minimum else "max"})
    return out


def unanswered(row: dict[str, Any]) -> bool:
    """The case run got no answer for a reason that may pass (provider down, rate limited, timed
    out after the retries): the run is incomplete, not failed."""
    error = row.get("error")
    return isinstance(error, dict) and error.get("retryable") is True


def variant_stats(spec: EvalSpec, rows: list[dict[str, Any]]) -> dict[str, Any]:
    latencies = [r["latency_ms"] for r in rows if r["error"] is None]
    by_case: dict[str, list[bool]] = defaultdict(list)
    for r in rows:
        by_case[r["case_id"]].append(bool(r["passed"]))
    flaky = sorted(c for c, seen in by_case.items() if len(set(seen)) > 1)
    stats: dict[str, Any] = {
        "runs": len(rows),
        "cases": len(by_case),
        "passed": sum(1 for r in rows if r["passed"]),
        "pass_rate": sum(1 for r in rows if r["passed"]) / len(rows) if rows else 0.0,
        "mean_score": sum(r["score"] for r in rows) / len(rows) if rows else 0.0,
        "latency_p50_ms": percentile(latencies, 50),
        "latency_p95_ms": percentile(latencies, 95),
        "input_tokens": sum(r["input_tokens"] for r in rows),
        "output_tokens": sum(r["output_tokens"] for r in rows),
        "cost": sum(r["cost"] for r in rows),
        "judge_cost": sum(r.get("judge_cost") or 0.0 for r in rows),
        "spent": sum(r.get("spent") or 0.0 for r in rows),
        "cached": sum(1 for r in rows if r.get("cached")),
        "errors": sum(1 for r in rows if r["error"] is not None),
        "unanswered": sum(1 for r in rows if unanswered(r)),
        "flaky": flaky,
        "metrics": {m.name: classification(m, rows) for m in spec.metrics},
    }
    stats["thresholds"] = _thresholds(spec.thresholds, stats)
    stats["thresholds_passed"] = all(t["passed"] for t in stats["thresholds"])
    return stats


def case_table(rows: list[dict[str, Any]], keys: list[str]) -> list[dict[str, Any]]:
    """Per case: each variant's passes out of its runs and mean score; ``differs`` when the
    variants do not agree."""
    cases: dict[str, dict[str, Any]] = {}
    for r in sorted(rows, key=lambda r: (r["case_index"], r["repeat"])):
        entry = cases.setdefault(r["case_id"], {"case_id": r["case_id"], "index": r["case_index"], "variants": {}})
        cell = entry["variants"].setdefault(r["variant"], {"passed": 0, "runs": 0, "score": 0.0, "reasons": [], "cached": 0})
        cell["runs"] += 1
        cell["cached"] += 1 if r.get("cached") else 0
        cell["passed"] += 1 if r["passed"] else 0
        cell["score"] += r["score"]
        if not r["passed"]:
            failing = [a["reason"] for a in r["assertions"] or [] if not a["passed"]]
            reason = (r["error"] or {}).get("message") if r["error"] else "; ".join(failing)
            if reason and reason not in cell["reasons"]:
                cell["reasons"].append(reason)
    out = []
    for entry in cases.values():
        for cell in entry["variants"].values():
            cell["score"] = cell["score"] / cell["runs"]
        rates = {k: c["passed"] / c["runs"] for k, c in entry["variants"].items() if k in keys}
        entry["differs"] = len(rates) > 1 and len(set(rates.values())) > 1
        out.append(entry)
    return out


def summarize(spec: EvalSpec, variants: list[dict[str, Any]], rows: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [v["key"] for v in variants]
    by_variant: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_variant[r["variant"]].append(r)
    out_variants = []
    for v in variants:
        out_variants.append({**v, **variant_stats(spec, by_variant.get(v["key"], []))})
    cases = case_table(rows, keys)
    return {
        "name": spec.name,
        "variants": out_variants,
        "cases": cases,
        "differing": [c["case_id"] for c in cases if c["differs"]],
        "passed": all(v["thresholds_passed"] for v in out_variants),
        "incomplete": sum(v["unanswered"] for v in out_variants),
    }


# -- baseline --------------------------------------------------------------------------------------


def _match(current: dict[str, Any], base_variants: list[dict[str, Any]], single: bool) -> dict[str, Any] | None:
    for b in base_variants:
        if b["key"] == current["key"]:
            return b
    for b in base_variants:
        if current.get("ref") and b.get("ref") == current.get("ref") and b.get("model") == current.get("model"):
            return b
    return base_variants[0] if single and len(base_variants) == 1 else None


def compare(summary: dict[str, Any], base_run: dict[str, Any], base_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Each variant against its counterpart in ``base_run`` (same version and model, else the
    same label and model): deltas, and the cases that now fail (regressions) or now pass (fixed)."""
    base_summary = base_run.get("summary") or {}
    base_variants = base_summary.get("variants", [])
    grouped: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for r in base_rows:
        grouped[(r["variant"], r["case_id"])].append(bool(r["passed"]))
    base_rate = {k: sum(v) / len(v) for k, v in grouped.items()}
    out = []
    single = len(summary["variants"]) == 1
    for v in summary["variants"]:
        b = _match(v, base_variants, single)
        if b is None:
            out.append({"variant": v["key"], "baseline_variant": None})
            continue
        regressions, fixed = [], []
        for case in summary["cases"]:
            cell = case["variants"].get(v["key"])
            before = base_rate.get((b["key"], case["case_id"]))
            if cell is None or before is None:
                continue
            now = cell["passed"] / cell["runs"]
            if now < before:
                regressions.append(case["case_id"])
            elif now > before:
                fixed.append(case["case_id"])
        out.append({
            "variant": v["key"],
            "baseline_variant": b["key"],
            "pass_rate": [b["pass_rate"], v["pass_rate"]],
            "mean_score": [b["mean_score"], v["mean_score"]],
            "cost": [b["cost"], v["cost"]],
            "latency_p95_ms": [b["latency_p95_ms"], v["latency_p95_ms"]],
            "regressions": regressions,
            "fixed": fixed,
        })
    return {"run_id": base_run["id"], "variants": out}


# -- text ------------------------------------------------------------------------------------------


def _fmt(value: Any, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "pct":
        return f"{value * 100:.1f}%"
    if kind == "score":
        return f"{value:.3f}"
    if kind == "ms":
        return f"{value:.0f} ms"
    if kind == "usd":
        return f"${value:.4f}"
    return str(value)


ROWS = (
    ("pass rate", "pass_rate", "pct"),
    ("mean score", "mean_score", "score"),
    ("p50 latency", "latency_p50_ms", "ms"),
    ("p95 latency", "latency_p95_ms", "ms"),
    ("tokens in", "input_tokens", "int"),
    ("tokens out", "output_tokens", "int"),
    ("cost", "cost", "usd"),
    ("judge cost", "judge_cost", "usd"),
    ("spent now", "spent", "usd"),
    ("cached runs", "cached", "int"),
    ("errors", "errors", "int"),
)


def missed(t: dict[str, Any]) -> str:
    """A threshold a variant missed, as a phrase: ``pass_rate is 0.4, needs ≥ 0.8``."""
    value = "-" if t["value"] is None else f"{t['value']:.4g}"
    return f"{t['name']} is {value}, needs {'≥' if t['kind'] == 'min' else '≤'} {t['limit']:g}"


def variant_title(v: dict[str, Any]) -> str:
    if v.get("version") is None:
        return str(v["key"])
    names = [n for n in [v.get("role"), v.get("ref"), *v.get("labels", [])] if n and not str(n).isdigit()]
    seen = list(dict.fromkeys(names))
    return f"v{v['version']}" + (f" ({', '.join(seen)})" if seen else "") + f" × {v.get('model')}"


def text_table(summary: dict[str, Any]) -> str:
    """The side-by-side table: one column per variant, then the cases that differ."""
    variants = summary["variants"]
    header = ["", *[variant_title(v) for v in variants]]
    body: list[list[str]] = []
    for label, key, kind in ROWS:
        body.append([label, *[_fmt(v.get(key), kind) for v in variants]])
    body.append(["flaky cases", *[str(len(v["flaky"])) for v in variants]])
    metric_names = sorted({m for v in variants for m in v["metrics"]})
    for name in metric_names:
        body.append([f"{name} accuracy", *[_fmt(v["metrics"].get(name, {}).get("accuracy"), "pct") for v in variants]])
    body.append(["thresholds", *["pass" if v["thresholds_passed"] else "FAIL" for v in variants]])
    lines = _grid([header, *body])
    failing = [(v, t) for v in variants for t in v["thresholds"] if not t["passed"]]
    for v, t in failing:
        lines.append(f"  {variant_title(v)}: {missed(t)}")
    if summary["differing"]:
        keys = [v["key"] for v in variants]
        lines += ["", "Cases whose result differs:"]
        rows = [["case", *[variant_title(v) for v in variants]]]
        for case in summary["cases"]:
            if case["differs"]:
                cells = []
                for k in keys:
                    cell = case["variants"].get(k)
                    mark = " (cached)" if cell and cell.get("cached") == cell["runs"] else ""
                    cells.append("-" if cell is None else f"{'pass' if cell['passed'] == cell['runs'] else 'FAIL'} {cell['passed']}/{cell['runs']}{mark}")
                rows.append([case["case_id"], *cells])
        lines += _grid(rows)
    flaky = sorted({c for v in variants for c in v["flaky"]})
    if flaky:
        lines += ["", f"Flaky cases (repeats disagree): {', '.join(flaky)}"]
    if summary.get("comparison"):
        from hub.evals.compare import comparison_text

        lines += comparison_text(summary["comparison"])
    if summary.get("incomplete"):
        lines += ["", f"INCOMPLETE: {summary['incomplete']} case run(s) got no answer (provider down after retries)"]
    base = summary.get("baseline")
    if base:
        lines += ["", f"Against baseline {base['run_id']}:"]
        for d in base["variants"]:
            if d["baseline_variant"] is None:
                lines.append(f"  {d['variant']}: no counterpart in the baseline")
                continue
            before, after = d["pass_rate"]
            lines.append(
                f"  {d['variant']} vs {d['baseline_variant']}: pass rate {_fmt(before, 'pct')} → {_fmt(after, 'pct')}"
                f"; regressions: {', '.join(d['regressions']) or 'none'}; fixed: {', '.join(d['fixed']) or 'none'}"
            )
    return "\n".join(lines)


def _grid(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for n, row in enumerate(rows):
        out.append("  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return out
