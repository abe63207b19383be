"""ETL as a flow author writes it: a YAML flow run by the real engine, datasets by reference."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import create_engine, text

from hub.testing import run_flow

FLOW = """
id: nightly_report
inputs:
  - {id: src, type: string, required: true}
  - {id: dst, type: string, required: true}
tasks:
  - id: extract
    type: etl.extract
    sql: {url: "{{ inputs.src }}", query: "SELECT * FROM orders WHERE amount >= :min", params: {min: 0}}
    batch_size: 50
  - id: clean
    type: etl.transform
    dataset: "{{ outputs.extract.dataset }}"
    steps:
      - filter: "row.status != 'void'"
      - derive: {domain: "row.email | domain", gross: "row.amount * 1.2"}
      - drop: [status]
  - id: load
    type: etl.load
    dataset: "{{ outputs.clean.dataset }}"
    sql: {url: "{{ inputs.dst }}", table: report, mode: upsert, key: [id], create: true}
outputs:
  extracted: "{{ outputs.extract.rows }}"
  loaded: "{{ outputs.load.rows }}"
  filtered: "{{ outputs.clean.filtered }}"
"""


def test_nightly_etl_flow(tmp_path: Path) -> None:
    src, dst = f"sqlite:///{tmp_path / 'shop.db'}", f"sqlite:///{tmp_path / 'report.db'}"
    engine = create_engine(src)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE orders (id INTEGER PRIMARY KEY, email TEXT, amount FLOAT, status TEXT)"))
        conn.execute(
            text("INSERT INTO orders VALUES (:id, :email, :amount, :status)"),
            [{"id": i, "email": f"u{i}@shop{i % 3}.io", "amount": float(i), "status": "void" if i % 10 == 0 else "paid"} for i in range(1, 301)],
        )
    engine.dispose()

    result = run_flow(FLOW, {"src": src, "dst": dst}, home=tmp_path / "home")
    assert result.state == "SUCCESS", result.error
    assert result.outputs == {"extracted": 300, "loaded": 270, "filtered": 30}
    # the execution record holds references, not rows
    stored = json.dumps(result.step("extract")["output"])
    assert "artifact:" in stored and "u1@shop1.io" not in stored

    check = create_engine(dst)
    with check.connect() as conn:
        row = conn.execute(text("SELECT email, domain, gross FROM report WHERE id = 7")).one()
    check.dispose()
    assert tuple(row) == ("u7@shop1.io", "shop1.io", 7 * 1.2)
