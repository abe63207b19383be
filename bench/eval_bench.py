"""How long ``hub eval`` takes against a model that answers in 200 ms.

    python bench/eval_bench.py [--cases 20] [--delay 0.2] [--concurrency 8] [--store sqlite|postgres]

An OpenAI-compatible stand-in (``hub.llm.fake.FakeOpenAI``, in a thread on loopback) answers every
chat request after ``--delay`` seconds, from the prompt: version 1 of the prompt always says
'billing', version 2 reads the ticket. The eval compares both versions on two model aliases
(``cases`` × 2 versions × 2 models case runs) at ``--concurrency``, through the real runner (the
``llm.chat`` task, call records, results, summary) on a fresh store. Printed: the wall time of the
first run (every answer asked), of the same eval again (every answer from the eval cache), and
the floor (case runs / concurrency × delay). Nothing asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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


async def main(args: argparse.Namespace) -> None:
    from hub.evals.runner import EvalRunner
    from hub.evals.spec import load_text
    from hub.llm.client import LLMClient
    from hub.llm.fake import FakeOpenAI
    from hub.llm.settings import LLMSettings, ModelsConfig
    from hub.prompts.registry import PromptRegistry
    from hub.settings import HubSettings
    from hub.store.store import Store

    home = Path(tempfile.mkdtemp(prefix="hub-eval-bench-"))
    prompts = home / "prompts"
    prompts.mkdir()
    (prompts / "triage.yaml").write_text(PROMPT)
    url = args.postgres if args.store == "postgres" else f"sqlite:///{home / 'hub.db'}"
    store = Store.open(url)
    registry = PromptRegistry(store.engine, prompts)
    registry.sync()
    (prompts / "triage.yaml").write_text(PROMPT.replace("You triage tickets.", "You triage tickets carefully."))
    registry.sync()
    fake = FakeOpenAI()
    fake.responder = responder(args.delay)
    with fake.serve() as base:
        priced = {"api_base": base, "api_key": "sk-bench", "input_cost_per_token": 1e-7, "output_cost_per_token": 2e-7}
        config = ModelsConfig.model_validate({"models": {
            "fast": {"model": "openai/fast-m", **priced}, "smart": {"model": "openai/smart-m", **priced},
        }})
        client = LLMClient(LLMSettings(models_file=home / "none.yaml", num_retries=0, timeout=10), config)
        runner = EvalRunner(store, client, HubSettings(home=home, prompts_dir=prompts))
        loaded = load_text(eval_text(args.cases, args.concurrency), "bench.yaml")
        runs = args.cases * 4
        for label in ("first run (every answer asked)", "same eval again (eval cache)"):
            asked = len(fake.requests)
            started = time.perf_counter()
            outcome = await runner.run(loaded)
            wall = time.perf_counter() - started
            rates = ", ".join(f"{v['key']} {v['pass_rate'] * 100:.0f}%" for v in outcome.summary["variants"])
            print(f"{label}: {wall:.2f} s for {runs} case runs, {len(fake.requests) - asked} model requests, "
                  f"max {fake.max_in_flight} in flight ({rates})")
        await client.aclose()
    print(f"floor: {runs} / {args.concurrency} x {args.delay:g} s = {runs / args.concurrency * args.delay:.2f} s ({args.store})")
    store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=20)
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--postgres", default=os.environ.get("HUB_TEST_POSTGRES_URL", ""))
    asyncio.run(main(parser.parse_args()))
