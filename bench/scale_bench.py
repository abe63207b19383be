"""Costs that should stay flat as the work grows (issue 19), each measured as a curve.

    python bench/scale_bench.py --quick                                # a minute or two
    python bench/scale_bench.py --postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/test
    python bench/scale_bench.py --compare /tmp/hub-before --curves expressions,compile,load,steps,for_each

Curves (the cost per unit at each size; the unit in brackets):

- ``expressions`` [µs per render]: N distinct expressions rendered over and over by one expression
  engine, as a server running flows that hold N expressions does (10 -> 10,000);
- ``compile`` [µs per expression]: a flow of N ``set`` steps, each with its own expression, loaded
  and each step's values rendered once (what a first run does), with a cold cache; also counts
  Jinja compilations per expression;
- ``load`` [µs per step]: loading a flow of N steps without expressions (the YAML, the checks);
- ``steps`` [ms per step]: running a flow of N sequential ``set`` steps, persisted (SQLite);
- ``for_each`` [ms per item]: a ``for_each`` over N items with one ``set`` step each (SQLite);
- ``history`` [ms per page; CPU on SQLite, wall on PostgreSQL]: one page of 50 executions,
  unfiltered and filtered (state, flow, namespace, label, a deep keyset page, a deep offset
  page) as the history grows: 1,000 -> 100,000 executions on SQLite, -> ``--max-history``
  (1,000,000) on PostgreSQL; the rows go in by bulk inserts, the store growing from one size to
  the next (bench/list_bench.py's rows and queries).

Everything but the history on PostgreSQL is process CPU time (``time.process_time``; the machine
is shared and wall time is noisy), the median of ``--repeat`` rounds, sizes interleaved within a
round; on PostgreSQL the history is wall time (the server's work counts), the median of
``--page-repeat`` pages.
For each curve it prints the ratio of the cost per unit at the largest size to that at the
smallest (1.0: flat) and draws every curve to ``--png``.

``--compare OTHER_CHECKOUT`` runs the same curves on the hub found in another checkout (``git
worktree add /tmp/before <commit>``), round after round, alternating in fresh processes, and
prints and draws both side by side. ``--hub-root`` says which checkout this process imports.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SIZES = [10, 100, 1_000, 4_000, 6_000, 10_000]
QUICK_SIZES = [10, 100, 1_000, 6_000]
UNITS = {
    "expressions": "µs per render", "compile": "µs per expression", "load": "µs per step",
    "steps": "ms per step", "for_each": "ms per item", "history": "ms per page",
}
CPU_CURVES = ["expressions", "compile", "load", "steps", "for_each"]


def _import_hub(root: Path) -> None:
    """Import the hub (and its connectors) from ``root``, before anything else imports them."""
    sys.path.insert(0, str(root))


# -- flows -------------------------------------------------------------------------------------------


def set_flow(n: int, expressions: bool, name: str = "scale") -> str:
    """``n`` sequential ``set`` steps, each with its own expression (or a constant)."""
    if expressions:
        steps = (f"  - {{id: s{i}, type: set, values: {{v: '{{{{ {i} + inputs.k }}}}'}}}}" for i in range(n))
    else:
        steps = (f"  - {{id: s{i}, type: set, values: {{v: {i}}}}}" for i in range(n))
    head = f"id: {name}{n}\ninputs: [{{id: k, type: int, default: 1}}]\n" if expressions else f"id: {name}{n}\n"
    return head + "tasks:\n" + "\n".join(steps) + "\n"


def for_each_flow(n: int) -> str:
    return (f"id: fan{n}\ntasks:\n  - id: each\n    type: for_each\n    items: \"{{{{ range({n}) | list }}}}\"\n"
            "    tasks:\n      - {id: one, type: set, values: {v: \"{{ item }}\"}}\n")


def loader() -> Any:
    """A flow loader without the 30,000-values limit of a flow file (10,000 steps are ~90,000)."""
    from hub.flow import yamlpos
    from hub.flow.loader import FlowLoader

    try:
        return FlowLoader(max_nodes=None)
    except TypeError:  # a hub from before FlowLoader(max_nodes=...): lift the default instead
        yamlpos.load.__defaults__ = (None,)
        return FlowLoader()


def fresh_cache(exprs: Any) -> None:
    """Forget every compiled expression (the cache is the process's)."""
    cache = exprs.__dict__.get("cache")
    if cache is not None:
        cache.resize(1)
        cache.resize(int(os.environ.get("HUB_EXPRESSION_CACHE_SIZE", "20000")))
    else:
        exprs._cache.clear()


@contextlib.contextmanager
def counting_compilations(exprs: Any) -> Iterator[list[int]]:
    """How many sources Jinja's compiler turned into code while the block ran."""
    count = [0]
    original = exprs.env.compile

    def counted(*args: Any, **kwargs: Any) -> Any:
        count[0] += 1
        return original(*args, **kwargs)

    exprs.env.compile = counted
    try:
        yield count
    finally:
        del exprs.env.compile


# -- the CPU curves ------------------------------------------------------------------------------------


def cpu(fn: Callable[[], Any]) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def expressions_point(n: int) -> dict[str, float]:
    from hub.flow.expressions import Expressions

    exprs = Expressions()
    params = [{"v": f"{{{{ outputs.s{i}.v + {i} }}}}"} for i in range(n)]
    scope = {"outputs": {f"s{i}": {"v": i} for i in range(n)}}
    passes = max(1, 10_000 // n)  # at least 10,000 renders a point, whatever n

    def render_all() -> None:
        for _ in range(passes):
            for p in params:
                exprs.render(p, scope)

    for p in params:  # the first render of each compiles it
        exprs.render(p, scope)
    return {"cost": cpu(render_all) / (passes * n) * 1e6}


def compile_point(n: int) -> dict[str, float]:
    from hub.flow.expressions import expressions

    exprs = expressions()
    fresh_cache(exprs)
    load = loader()
    text = set_flow(n, expressions=True, name=f"c{time.time_ns()}")
    scope = {"inputs": {"k": 1}}

    def load_and_render() -> None:
        flow = load.load_text(text)
        for task in flow.tasks:
            exprs.render(task.params, scope, task.id)

    with counting_compilations(exprs) as count:
        seconds = cpu(load_and_render)
    return {"cost": seconds / n * 1e6, "compilations": count[0] / n}


def load_point(n: int) -> dict[str, float]:
    load = loader()
    text = set_flow(n, expressions=False)
    load.load_text(text)  # warm: the registry, pydantic's validators
    return {"cost": cpu(lambda: load.load_text(text)) / n * 1e6}


def _engine_point(text: str, units: int) -> dict[str, float]:
    from hub.testing import make_engine

    flow = loader().load_text(text)
    with tempfile.TemporaryDirectory() as home:
        engine = make_engine(home=home)
        engine.deploy(flow)
        try:
            asyncio.run(engine.execute(flow))  # warm: the first connection, statement caches

            async def run() -> None:
                execution = await engine.execute(flow)
                assert execution["state"] == "SUCCESS", execution["error"]

            seconds = cpu(lambda: asyncio.run(run()))
        finally:
            engine.store.close()
    return {"cost": seconds / units * 1e3}


def steps_point(n: int) -> dict[str, float]:
    return _engine_point(set_flow(n, expressions=True, name="run"), n)


def for_each_point(n: int) -> dict[str, float]:
    return _engine_point(for_each_flow(n), n)


POINTS: dict[str, Callable[[int], dict[str, float]]] = {
    "expressions": expressions_point, "compile": compile_point, "load": load_point,
    "steps": steps_point, "for_each": for_each_point,
}


def cpu_curves(curves: list[str], sizes: list[int], rounds: int) -> dict[str, dict[int, list[dict[str, float]]]]:
    """Every (curve, size) once per round; the sizes of a curve interleaved round after round."""
    got: dict[str, dict[int, list[dict[str, float]]]] = {c: {n: [] for n in sizes} for c in curves}
    for _ in range(rounds):
        for curve in curves:
            for n in sizes:
                got[curve][n].append(POINTS[curve](n))
    return got


# -- history --------------------------------------------------------------------------------------------


def history_curve(url: str | None, sizes: list[int], repeat: int) -> dict[str, dict[int, float]]:
    """Median ms of each page case at each size (SQLite: CPU; PostgreSQL: wall), the store grown
    from one size to the next."""
    sys.path.insert(0, str(HERE))
    from list_bench import fill, measure  # type: ignore[import-not-found]

    from hub.store.store import Store

    out: dict[str, dict[int, float]] = {}
    schema = None
    with tempfile.TemporaryDirectory() as tmp:
        target = url or f"sqlite:///{tmp}/history.db"
        if target.startswith("postgresql"):
            from sqlalchemy import create_engine, text

            schema = f"scale_bench_{int(time.time())}"
            with create_engine(target).begin() as conn:
                conn.execute(text(f"CREATE SCHEMA {schema}"))
            target += ("&" if "?" in target else "?") + f"options=-csearch_path%3D{schema}"
        store = Store.open(target)
        try:
            have = 0
            for n in sizes:
                began = time.perf_counter()
                fill(store, n - have)
                have = n
                if store.engine.dialect.name == "postgresql":
                    with store.engine.begin() as conn:
                        conn.exec_driver_sql("ANALYZE")
                filled = time.perf_counter() - began
                results = measure(store, n, repeat)
                print(f"  history {store.engine.dialect.name} {n:>9,}: filled in {filled:.1f} s; "
                      + ", ".join(f"{case} {wall:.2f} ({cpu:.2f} CPU)" for case, (wall, cpu) in results.items())
                      + " ms", flush=True)
                # SQLite works in this process: its CPU time is the query's, and steadier than the wall
                # clock on a shared machine; PostgreSQL's work is in the server: the wall time
                sqlite = store.engine.dialect.name == "sqlite"
                for case, (wall, cpu) in results.items():
                    out.setdefault(case, {})[n] = cpu if sqlite else wall
        finally:
            store.close()
            if schema:
                from sqlalchemy import create_engine, text

                with create_engine(url or "").begin() as conn:
                    conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    return out


# -- reporting ------------------------------------------------------------------------------------------


def medians(raw: dict[str, dict[int, list[dict[str, float]]]], key: str = "cost") -> dict[str, dict[int, float]]:
    return {c: {n: statistics.median(r[key] for r in runs) for n, runs in sizes.items() if runs}
            for c, sizes in raw.items()}


def ratio(curve: dict[int, float]) -> float:
    sizes = sorted(curve)
    return curve[sizes[-1]] / curve[sizes[0]] if curve[sizes[0]] else float("nan")


def print_table(title: str, curves: dict[str, dict[int, float]], other: dict[str, dict[int, float]] | None = None,
                unit: Callable[[str], str] = lambda c: UNITS.get(c, "")) -> None:
    print(f"\n{title}")
    for name, curve in curves.items():
        sizes = sorted(curve)
        cells = "  ".join(f"{n:>7,}: {curve[n]:8.3f}" for n in sizes)
        line = f"  {name:<22} [{unit(name)}]  {cells}   largest/smallest x{ratio(curve):.2f}"
        if other and name in other:
            line += f"   (before x{ratio(other[name]):.2f})"
        print(line)


def plot(path: Path, after: dict[str, dict[int, float]], before: dict[str, dict[int, float]] | None,
         history: dict[str, dict[str, dict[int, float]]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [c for c in CPU_CURVES if c in after] + [f"history {db}" for db in history]
    cols = 3
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(12, 3.3 * rows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax, panel in zip(axes.flat, panels, strict=False):
        if panel.startswith("history"):
            for case, curve in history[panel.split()[1]].items():
                xs = sorted(curve)
                ax.plot(xs, [curve[x] for x in xs], marker=".", label=case)
            ax.set_ylabel("ms per page (" + ("CPU" if panel.endswith("sqlite") else "wall") + ")")
            ax.legend(fontsize=6)
        else:
            for label, data, style in (("before", before, "--"), ("after", after, "-")):
                if data and panel in data:
                    xs = sorted(data[panel])
                    ax.plot(xs, [data[panel][x] for x in xs], style, marker=".", label=label)
            ax.set_ylabel(UNITS[panel])
            if before:
                ax.legend(fontsize=7)
        ax.set_title(panel, fontsize=9)
        ax.set_xscale("log")
        ax.set_yscale("log")  # a flat curve is flat, a cliff shows as one
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=72)
    print(f"\ncurves drawn to {path}")


# -- main -----------------------------------------------------------------------------------------------


def child(args: argparse.Namespace, root: Path, curves: list[str], out: Path) -> None:
    """One round of ``curves`` on the hub of ``root``, in a fresh process, into ``out`` (JSON)."""
    cmd = [sys.executable, __file__, "--hub-root", str(root), "--curves", ",".join(curves), "--repeat", "1",
           "--sizes", ",".join(map(str, args.sizes)), "--json", str(out), "--no-history"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def compare(args: argparse.Namespace, curves: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    roots = {"before": Path(args.compare).resolve(), "after": Path(args.hub_root).resolve()}
    raw: dict[str, dict[str, dict[int, list[dict[str, float]]]]] = {
        side: {c: {n: [] for n in args.sizes} for c in curves} for side in roots
    }
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeat):
            for side in (("before", "after") if r % 2 == 0 else ("after", "before")):
                out = Path(tmp) / f"{side}{r}.json"
                child(args, roots[side], curves, out)
                for c, sizes in json.loads(out.read_text()).items():
                    for n, runs in sizes.items():
                        raw[side][c][int(n)].extend(runs)
            print(f"  round {r + 1}/{args.repeat} done", flush=True)
    return raw["before"], raw["after"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help=f"sizes {QUICK_SIZES}, 3 rounds, history to 100,000 (PostgreSQL) and 10,000 (SQLite)")
    parser.add_argument("--curves", default=",".join(CPU_CURVES), help="comma-separated: " + ", ".join(CPU_CURVES))
    parser.add_argument("--sizes", default=None, help=f"comma-separated sizes of the CPU curves (default {SIZES})")
    parser.add_argument("--repeat", type=int, default=None, help="rounds of the CPU curves (default 5; --quick 3)")
    parser.add_argument("--no-history", action="store_true", help="leave out the execution-list curves")
    parser.add_argument("--postgres-url", default=os.environ.get("HUB_TEST_POSTGRES_URL") or None,
                        help="PostgreSQL for the history curve (default $HUB_TEST_POSTGRES_URL; a schema of its "
                             "own, dropped at the end); '' or none: SQLite only")
    parser.add_argument("--max-history", type=int, default=None,
                        help="largest history on PostgreSQL (default 1,000,000; --quick 100,000); SQLite stops "
                             "at 100,000 (--quick 10,000)")
    parser.add_argument("--page-repeat", type=int, default=21, help="pages timed per history case and size")
    parser.add_argument("--compare", default=None, metavar="CHECKOUT", help="another checkout to measure side by side")
    parser.add_argument("--hub-root", default=str(HERE.parent), help="the checkout whose hub this process imports")
    parser.add_argument("--png", default=str(HERE.parent / "docs" / "scale_bench.png"))
    parser.add_argument("--json", default=None, help="write the raw CPU measurements here (used by --compare)")
    parser.add_argument("--save", default=None, metavar="FILE", help="keep the medians measured in FILE (JSON)")
    parser.add_argument("--report", nargs="+", default=None, metavar="FILE",
                        help="measure nothing: print and draw the medians saved by --save runs, merged")
    args = parser.parse_args()
    if args.report:
        return report(args)
    args.sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else (QUICK_SIZES if args.quick else SIZES)
    args.repeat = args.repeat or (3 if args.quick else 5)
    curves = [c for c in args.curves.split(",") if c]
    unknown = set(curves) - set(CPU_CURVES)
    if unknown:
        parser.error(f"unknown curve(s) {', '.join(sorted(unknown))}; expected {', '.join(CPU_CURVES)}")
    _import_hub(Path(args.hub_root))

    before = None
    raw_before: dict[str, Any] = {}
    if args.compare:
        raw_before, raw = compare(args, curves)
        before = medians(raw_before)
    else:
        raw = cpu_curves(curves, args.sizes, args.repeat)
    if args.json:
        Path(args.json).write_text(json.dumps(raw))
    after = medians(raw)

    history: dict[str, dict[str, dict[int, float]]] = {}
    if not args.no_history:
        top_sqlite = 10_000 if args.quick else 100_000
        top_pg = args.max_history or (100_000 if args.quick else 1_000_000)
        ladder = [1_000, 10_000, 100_000, 1_000_000]
        history["sqlite"] = history_curve(None, [n for n in ladder if n <= top_sqlite], args.page_repeat)
        if args.postgres_url:
            history["postgresql"] = history_curve(args.postgres_url, [n for n in ladder if n <= top_pg],
                                                  args.page_repeat)
    if args.json and not args.compare:
        return  # a round of --compare: the parent reports
    if args.save:
        saved = {"after": after, "before": before, "history": history, "repeat": args.repeat,
                 "page_repeat": args.page_repeat, "compare": args.compare,
                 "compilations": {side: statistics.median(r["compilations"] for rs in data["compile"].values() for r in rs)
                                  for side, data in (("after", raw), ("before", raw_before if before else None))
                                  if data and "compile" in data}}
        Path(args.save).write_text(json.dumps(saved))
    compilations = {side: statistics.median(r["compilations"] for rs in data["compile"].values() for r in rs)
                    for side, data in (("after", raw), ("before", raw_before if before else None))
                    if data and "compile" in data}
    show(args, after, before, history, compilations)


def show(args: argparse.Namespace, after: dict[str, dict[int, float]], before: dict[str, dict[int, float]] | None,
         history: dict[str, dict[str, dict[int, float]]], compilations: dict[str, float]) -> None:
    title = f"CPU curves, median of {args.repeat} rounds" + (" (after; before side by side)" if before else "")
    if before:
        print_table(f"before ({args.compare})", before)
    if after:
        print_table(title, after, before)
    if compilations:
        print("  Jinja compilations per expression (load + first render): "
              + ", ".join(f"{side} {value:.2f}" for side, value in sorted(compilations.items(), reverse=True)))
    for db, cases in history.items():
        clock = "CPU" if db == "sqlite" else "wall"
        print_table(f"history, {db}, {clock} ms per page of 50, median of {args.page_repeat}", cases,
                    unit=lambda _: "ms per page")
    if args.png:
        plot(Path(args.png), after, before, history)


def report(args: argparse.Namespace) -> None:
    """Print and draw what earlier ``--save`` runs measured (CPU curves from one, history from another)."""
    after: dict[str, dict[int, float]] = {}
    before: dict[str, dict[int, float]] = {}
    history: dict[str, dict[str, dict[int, float]]] = {}
    compilations: dict[str, float] = {}

    def sizes(curves: dict[str, dict[str, float]] | None) -> dict[str, dict[int, float]]:
        return {c: {int(n): v for n, v in points.items()} for c, points in (curves or {}).items()}

    for file in args.report:
        saved = json.loads(Path(file).read_text())
        after.update(sizes(saved["after"]))
        before.update(sizes(saved["before"]))
        for db, cases in saved["history"].items():
            history[db] = sizes(cases)
        compilations.update(saved.get("compilations") or {})
        args.repeat = saved["repeat"] if saved["after"] else args.repeat
        args.page_repeat = saved["page_repeat"] if saved["history"] else args.page_repeat
        args.compare = saved["compare"] or args.compare
    show(args, after, before or None, history, compilations)


if __name__ == "__main__":
    main()
