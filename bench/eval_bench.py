"""How long ``hub eval`` takes against a model that answers in 200 ms.

    python bench/eval_bench.py [--cases 20] [--delay 0.2] [--concurrency 8] [--store sqlite|postgres] [--cli [--compiled]]

An OpenAI-compatible stand-in (``hub.llm.fake.FakeOpenAI``, in its own process on loopback) answers every
chat request after ``--delay`` seconds, from the prompt: version 1 of the prompt always says
'billing', version 2 reads the ticket. The eval compares both versions on two model aliases
(``cases`` × 2 versions × 2 models case runs) at ``--concurrency``, through the real runner (the
``llm.chat`` task, call records, results, summary) on a fresh store. Printed: the wall and CPU
time of ``EvalRunner.run`` for the first run (every answer asked) and for the same eval again
(every answer from the eval cache), and the floor (case runs / concurrency × delay). With
``--cli`` the ``hub eval`` command is timed instead, start-up and imports included, first on an
empty cache, then from the cache. Where ``PYTHONDONTWRITEBYTECODE`` is set (as on the project's
shared machine) every start compiles the hub's own modules from source, about 0.1 s of CPU that an
installed hub does not spend; ``--compiled`` byte-compiles ``hub`` and ``connectors`` first
(``python -m compileall``, into their ``__pycache__`` folders) to time the command as installed.
Nothing asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

PROMPT = """\
name: triage
model: fast
parameters: {temperature: 0}
variables: {body: {description: the ticket}}
messages:
  - {role: system, content: You triage tickets.}
  - {role: user, content: "Ticket: {{ body }}"}
output:
  schema:
    type: object
    required: [category]
    properties: {category: {type: string, enum: [billing, bug, other]}}
"""
WORDS = {"charged": "billing", "invoice": "billing", "crash": "bug", "error": "bug"}
BODIES = ["I was charged twice", "Where is my invoice", "The app crash on start", "error 500 on save", "hello there"]


def responder(delay: float) -> Any:
    from hub.llm.fake import Reply

    def answer(request: dict[str, Any]) -> Reply:
        system = request["messages"][0]["content"]
        ticket = request["messages"][-1]["content"].lower()
        if "carefully" in system:
            category = next((c for w, c in WORDS.items() if w in ticket), "other")
        else:
            category = "billing"
        return Reply(json.dumps({"category": category}), delay=delay)

    return answer


def eval_text(cases: int, concurrency: int) -> str:
    lines = [
        "name: triage_bench", "target: {prompt: triage}", "versions: [1, 2]", "models: [fast, smart]",
        f"concurrency: {concurrency}", "assert: [{type: field, path: category}]", "cases:",
    ]
    for i in range(cases):
        body = BODIES[i % len(BODIES)]
        expected = next((c for w, c in WORDS.items() if w in body.lower()), "other")
        lines.append(f"  - {{id: case-{i}, vars: {{body: '{body} #{i}'}}, expected: {{category: {expected}}}}}")
    return "\n".join(lines) + "\n"


def stand_in(conn: Any, delay: float) -> None:
    """The model server, in its own process (as a provider is): its CPU is not the hub's."""
    from hub.llm.fake import FakeOpenAI

    fake = FakeOpenAI()
    fake.responder = responder(delay)
    with fake.serve() as base:
        conn.send(base)
        while conn.recv() == "stats":
            conn.send((len(fake.requests), fake.max_in_flight))
            fake.max_in_flight = 0


def setup(home: Path, store_url: str) -> Path:
    """Prompt ``triage`` with versions 1 and 2 in a fresh store; returns the prompts folder."""
    from hub.prompts.registry import PromptRegistry
    from hub.store.store import Store

    prompts = home / "prompts"
    prompts.mkdir()
    (prompts / "triage.yaml").write_text(PROMPT)
    store = Store.open(store_url)
    registry = PromptRegistry(store.engine, prompts)
    registry.sync()
    (prompts / "triage.yaml").write_text(PROMPT.replace("You triage tickets.", "You triage tickets carefully."))
    registry.sync()
    store.close()
    return prompts


def aliases(base: str) -> dict[str, Any]:
    priced = {"api_base": base, "api_key": "sk-bench", "input_cost_per_token": 1e-7, "output_cost_per_token": 2e-7}
    return {"fast": {"model": "openai/fast-m", **priced}, "smart": {"model": "openai/smart-m", **priced}}


async def in_process(args: argparse.Namespace, home: Path, url: str, prompts: Path, base: str, stats: Any) -> None:
    """``EvalRunner.run`` timed twice in this process (the imports done before the clock starts)."""
    from hub.evals.runner import EvalRunner
    from hub.evals.spec import load_text
    from hub.llm.client import LLMClient
    from hub.llm.settings import LLMSettings, ModelsConfig
    from hub.settings import HubSettings
    from hub.store.store import Store

    store = Store.open(url)
    config = ModelsConfig.model_validate({"models": aliases(base)})
    client = LLMClient(LLMSettings(models_file=home / "none.yaml", num_retries=0, timeout=10), config)
    runner = EvalRunner(store, client, HubSettings(home=home, prompts_dir=prompts))
    loaded = load_text(eval_text(args.cases, args.concurrency), "bench.yaml")
    for label in ("first run (every answer asked)", "same eval again (eval cache)"):
        asked, _ = stats()
        started, cpu = time.perf_counter(), time.process_time()
        outcome = await runner.run(loaded)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        variants = outcome.summary["variants"]
        rates = ", ".join(f"{v['key']} {v['pass_rate'] * 100:.0f}%" for v in variants)
        p50 = statistics.median(v["latency_p50_ms"] or 0.0 for v in variants)
        requests, in_flight = stats()
        print(f"{label}: {wall:.2f} s ({cpu:.2f} s CPU) for {args.cases * 4} case runs, "
              f"{requests - asked} model requests, max {in_flight} in flight, model latency p50 {p50:.0f} ms ({rates})")
    await client.aclose()
    store.close()


def command(args: argparse.Namespace, home: Path, url: str, prompts: Path, base: str, stats: Any) -> None:
    """``hub eval bench.yaml`` as a user runs it: a fresh process, its start-up and imports included."""
    import subprocess

    (home / "models.yaml").write_text(json.dumps({"models": aliases(base)}))
    (home / "bench.yaml").write_text(eval_text(args.cases, args.concurrency))
    env = {**os.environ, "HUB_HOME": str(home), "HUB_DATABASE_URL": url, "HUB_PROMPTS_DIR": str(prompts),
           "HUB_LLM_MODELS_FILE": str(home / "models.yaml"), "HUB_LLM_NUM_RETRIES": "0"}
    hub = Path(sys.executable).with_name("hub")
    if args.compiled:
        root = Path(__file__).resolve().parents[1]
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(root / "hub"), str(root / "connectors")], check=True)
    print(f"hub's own modules: {'byte-compiled' if args.compiled else 'as found'}"
          f" (PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r})")
    for label, extra in (("hub eval (every answer asked)", []), ("hub eval again (eval cache)", [])):
        asked, _ = stats()
        started, children = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run([str(hub), "eval", str(home / "bench.yaml"), *extra], env=env, capture_output=True, text=True)
        wall, ended = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = ended.ru_utime + ended.ru_stime - children.ru_utime - children.ru_stime
        requests, in_flight = stats()
        print(f"{label}: {wall:.2f} s wall ({cpu:.2f} s CPU), exit {done.returncode}, "
              f"{requests - asked} model requests, max {in_flight} in flight")
        if done.returncode not in (0, 1):
            print(done.stdout[-2000:], done.stderr[-2000:])


def main(args: argparse.Namespace) -> None:
    import multiprocessing

    home = Path(tempfile.mkdtemp(prefix="hub-eval-bench-"))
    url = args.postgres if args.store == "postgres" else f"sqlite:///{home / 'hub.db'}"
    prompts = setup(home, url)
    ours, theirs = multiprocessing.get_context("spawn").Pipe()
    server = multiprocessing.get_context("spawn").Process(target=stand_in, args=(theirs, args.delay), daemon=True)
    server.start()
    base = ours.recv()

    def stats() -> tuple[int, int]:
        ours.send("stats")
        return ours.recv()  # type: ignore[no-any-return]

    load = os.getloadavg()[0]
    try:
        if args.cli:
            command(args, home, url, prompts, base, stats)
        else:
            asyncio.run(in_process(args, home, url, prompts, base, stats))
    finally:
        ours.send("stop")
        server.join(10)
    runs = args.cases * 4
    print(f"floor: {runs} / {args.concurrency} x {args.delay:g} s = {runs / args.concurrency * args.delay:.2f} s "
          f"({args.store}; load average {load:.1f} before, {os.getloadavg()[0]:.1f} after)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--postgres", default=os.environ.get("HUB_TEST_POSTGRES_URL", ""))
    parser.add_argument("--cli", action="store_true", help="time the `hub eval` command in a fresh process instead")
    parser.add_argument("--compiled", action="store_true", help="with --cli: byte-compile hub and connectors first")
    main(parser.parse_args())
