"""Exports of a stored run: JSON (run, summary, every result) and a self-contained HTML report
(inline CSS, no script, no outside resource)."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from hub.evals.report import ROWS, _fmt, missed, variant_title
from hub.evals.results import EvalStore


def run_document(results: EvalStore, run_id: str) -> dict[str, Any]:
    run = results.run(run_id)
    return {"run": {k: v for k, v in run.items() if k != "summary"}, "summary": run["summary"], "results": results.results(run["id"])}


def to_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, default=str, ensure_ascii=False)


CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0}
th,td{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}
th{background:#f3f3f3}td.num{text-align:right}
.pass{color:#176f2c;font-weight:600}.fail{color:#b00020;font-weight:600}
pre{white-space:pre-wrap;margin:0;max-width:40em;font-size:12px}
details summary{cursor:pointer}
"""


def _cell(value: str, cls: str = "") -> str:
    return f"<td class='{cls}'>{value}</td>" if cls else f"<td>{value}</td>"


def _verdict(ok: bool) -> str:
    return "<span class='pass'>pass</span>" if ok else "<span class='fail'>FAIL</span>"


def to_html(document: dict[str, Any]) -> str:
    run, summary, rows = document["run"], document["summary"] or {}, document["results"]
    variants = summary.get("variants", [])
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>eval {escape(str(run['name']))} · {escape(str(run['id']))}</title><style>{CSS}</style></head><body>",
        f"<h1>Eval {escape(str(run['name']))}: {_verdict(bool(run.get('passed')))}</h1>",
        f"<p>Run <code>{escape(str(run['id']))}</code> · file {escape(str(run.get('file') or '-'))} · "
        f"status {escape(str(run['status']))}</p>",
        "<h2>Summary</h2><table id='summary'><thead><tr><th></th>",
    ]
    parts += [f"<th>{escape(variant_title(v))}</th>" for v in variants]
    parts.append("</tr></thead><tbody>")
    for label, key, kind in ROWS:
        parts.append(f"<tr><th>{label}</th>" + "".join(_cell(escape(_fmt(v[key], kind)), "num") for v in variants) + "</tr>")
    for name in sorted({m for v in variants for m in v["metrics"]}):
        parts.append(f"<tr><th>{escape(name)} accuracy</th>"
                     + "".join(_cell(_fmt(v["metrics"].get(name, {}).get("accuracy"), "pct"), "num") for v in variants) + "</tr>")
    parts.append("<tr><th>thresholds</th>" + "".join(_cell(_verdict(v["thresholds_passed"])) for v in variants) + "</tr>")
    parts.append("</tbody></table>")
    for v in variants:
        failing = [t for t in v["thresholds"] if not t["passed"]]
        if failing:
            items = "".join(f"<li>{escape(missed(t))}</li>" for t in failing)
            parts.append(f"<p>{escape(variant_title(v))} misses:</p><ul>{items}</ul>")
    for v in variants:
        for name, m in v["metrics"].items():
            labels = list(m["confusion"])
            parts.append(f"<h2>{escape(name)}: confusion matrix, {escape(variant_title(v))}</h2>")
            parts.append("<table class='confusion'><tr><th>true \\ predicted</th>" + "".join(f"<th>{escape(lb)}</th>" for lb in labels)
                         + "<th>precision</th><th>recall</th></tr>")
            for t in labels:
                stats = m["labels"][t]
                parts.append(f"<tr><th>{escape(t)}</th>" + "".join(_cell(str(m["confusion"][t][p]), "num") for p in labels)
                             + _cell(_fmt(stats["precision"], "pct"), "num") + _cell(_fmt(stats["recall"], "pct"), "num") + "</tr>")
            parts.append("</table>")
    keys = [v["key"] for v in variants]
    parts.append("<h2>Cases</h2><table id='cases'><thead><tr><th>case</th>")
    parts += [f"<th>{escape(variant_title(v))}</th>" for v in variants]
    parts.append("<th>differs</th></tr></thead><tbody>")
    for case in summary.get("cases", []):
        cells = []
        for k in keys:
            cell = case["variants"].get(k)
            if cell is None:
                cells.append(_cell("-"))
                continue
            text = f"{_verdict(cell['passed'] == cell['runs'])} {cell['passed']}/{cell['runs']}"
            if cell["reasons"]:
                text += "<br><small>" + escape("; ".join(cell["reasons"])[:300]) + "</small>"
            cells.append(_cell(text))
        parts.append(f"<tr><td>{escape(case['case_id'])}</td>{''.join(cells)}<td>{'yes' if case['differs'] else ''}</td></tr>")
    parts.append("</tbody></table><h2>Outputs</h2><table id='results'><thead><tr><th>case</th><th>variant</th><th>#</th>"
                 "<th>result</th><th>score</th><th>output</th><th>assertions</th><th>calls</th></tr></thead><tbody>")
    for r in rows:
        output = r["error"]["message"] if r["error"] else (r["output"] if r["output"] is not None else r["text"])
        shown = output if isinstance(output, str) else json.dumps(output, indent=1, ensure_ascii=False)
        checks = "".join(
            f"<li>{_verdict(a['passed'])} {escape(a['name'])}: {escape(a['reason'])}</li>" for a in r["assertions"] or []
        )
        parts.append(
            f"<tr><td>{escape(r['case_id'])}</td><td>{escape(r['variant'])}</td><td>{r['repeat']}</td>"
            f"<td>{_verdict(r['passed'])}</td><td class='num'>{r['score']:.3f}</td>"
            f"<td><details><summary>output</summary><pre>{escape(shown or '')}</pre></details></td>"
            f"<td><ul>{checks}</ul></td><td>{escape(', '.join(str(i) for i in r['call_ids'] or []))}</td></tr>"
        )
    parts.append("</tbody></table></body></html>")
    return "\n".join(parts)
