"""flows/nightly_etl.yaml as shipped: a shop database in, reporting rows, a CSV export and a
script's per-region summary out."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from hub.flow.loader import load_file
from hub.testing import make_engine, run_flow

FLOW = Path(__file__).resolve().parents[2] / "flows" / "nightly_etl.yaml"

REGIONS = ("north", "south", "east")


def _amount(i: int) -> float:
    return float(i) * (3 if REGIONS[i % 3] == "east" else 1)


def test_nightly_etl_loads_exports_and_summarises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shop, report = f"sqlite:///{tmp_path / 'shop.db'}", f"sqlite:///{tmp_path / 'report.db'}"
    db = create_engine(shop)
    with db.begin() as conn:
        conn.execute(text("CREATE TABLE orders (id INTEGER PRIMARY KEY, email TEXT, region TEXT, amount FLOAT, status TEXT)"))
        conn.execute(
            text("INSERT INTO orders VALUES (:id, :email, :region, :amount, :status)"),
            [{"id": i, "email": f"u{i}@shop.io", "region": REGIONS[i % 3], "amount": _amount(i),
              "status": "void" if i % 10 == 0 else "paid"} for i in range(1, 61)],
        )
    db.dispose()
    monkeypatch.setenv("HUB_SECRET_SHOP_DB_URL", shop)
    monkeypatch.setenv("HUB_SECRET_REPORTING_DB_URL", report)
    export = tmp_path / "export"
    export.mkdir()

    engine = make_engine(home=tmp_path / "home")
    result = run_flow(load_file(FLOW), {"export_dir": str(export)}, engine=engine)
    assert result.state == "SUCCESS", result.error

    paid = [i for i in range(1, 61) if i % 10]
    totals = {r: sum(_amount(i) for i in paid if REGIONS[i % 3] == r) for r in REGIONS}
    assert result.outputs["loaded"] == len(paid) and result.outputs["filtered"] == 6
    assert result.outputs["regions"] == 3 and result.outputs["total"] == sum(totals.values())
    summary = engine.store.get_blob(result.outputs["report"]["blob"].removeprefix("blob:")).decode()
    rows = list(csv.DictReader(summary.splitlines()))
    assert {r["region"]: float(r["amount"]) for r in rows} == totals
    [exported] = list(export.glob("orders-*.csv"))
    assert len(exported.read_text().splitlines()) == len(paid) + 1
    check = create_engine(report)
    with check.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM orders_daily")).scalar() == len(paid)
    check.dispose()
    top = max(totals, key=lambda r: totals[r])
    assert top == "east"
    assert f"{len(paid)} orders loaded; top region {top}" in [m["message"] for m in engine.store.logs(result.id)]
