"""A JUnit XML report of an eval run, for CI systems (GitLab, Jenkins, GitHub test reporters).

One ``<testsuite>`` per compared version × model, one ``<testcase>`` per case run
(``case#repeat``); a failing case run is a ``<failure>`` with its failed assertions, a case run
without an answer an ``<error>``. The thresholds and gates are a last test case of each suite.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any
from xml.etree import ElementTree as ET

from hub.evals.report import missed, unanswered, variant_title


def to_junit(run: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    summary = run.get("summary") or {}
    by_variant: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_variant[r["variant"]].append(r)
    root = ET.Element("testsuites", name=f"hub eval {run['name']}", id=str(run["id"]))
    pairs = {p["candidate"]: p for p in (summary.get("comparison") or {}).get("pairs", [])}
    for v in summary.get("variants", []):
        cases = by_variant.get(v["key"], [])
        suite = ET.SubElement(root, "testsuite", name=f"{run['name']} {variant_title(v)}", tests=str(len(cases) + 1))
        failures = errors = 0
        for r in cases:
            case = ET.SubElement(
                suite, "testcase", classname=f"{run['name']}.{v['key']}", name=f"{r['case_id']}#{r['repeat']}",
                time=f"{(r['latency_ms'] or 0) / 1000:.3f}",
            )
            if r["error"] is not None:
                kind = "error" if unanswered(r) else "failure"
                errors += kind == "error"
                failures += kind == "failure"
                ET.SubElement(case, kind, message=str(r["error"].get("message", r["error"]))[:500])
            elif not r["passed"]:
                failures += 1
                failed = [f"{a['name']}: {a['reason']}" for a in r["assertions"] or [] if not a["passed"]]
                ET.SubElement(case, "failure", message="; ".join(failed)[:500]).text = "\n".join(failed)
            if r.get("cached"):
                ET.SubElement(case, "system-out").text = "answered from the eval cache"
        gate = ET.SubElement(suite, "testcase", classname=f"{run['name']}.{v['key']}", name="thresholds")
        misses = [missed(t) for t in v.get("thresholds", []) if not t["passed"]]
        pair = pairs.get(v["key"])
        if pair is not None:
            misses += [f"gate {g['name']} is {g['value']}, limit {g['limit']}" for g in pair["gates"] if not g["passed"]]
        if misses:
            failures += 1
            ET.SubElement(gate, "failure", message="; ".join(misses))
        suite.set("failures", str(failures))
        suite.set("errors", str(errors))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
