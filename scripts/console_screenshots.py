"""Screenshots of every console page, taken in Debian's chromium from a real hub server, written to
docs/console/*.png and listed in docs/console.md (between the ``screenshots`` markers).

    .venv/bin/python scripts/console_screenshots.py        # from the repository root

Needs chromium (``apt-get install -y chromium``) and Playwright for Python (a dev dependency).
The server is the browser tests' demo hub (tests/console/live.py): SQLite, tracing into the
database, the shipped fake OpenAI-compatible server, one approval waiting and one eval run.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

OUT = ROOT / "docs" / "console"
DOC = ROOT / "docs" / "console.md"
START, END = "<!-- screenshots -->", "<!-- /screenshots -->"
CHROMIUM = os.environ.get("HUB_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


def main() -> int:
    from playwright.sync_api import expect, sync_playwright

    from tests.console.live import demo_hub

    if not Path(CHROMIUM).exists():
        print("no chromium: apt-get install -y chromium", file=sys.stderr)
        return 2
    expect.set_options(timeout=60_000)
    OUT.mkdir(parents=True, exist_ok=True)
    shots: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp, demo_hub(Path(tmp)) as hub, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        wide = browser.new_context(viewport={"width": 1280, "height": 800}, device_scale_factor=1).new_page()
        phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True).new_page()

        def shoot(page: object, name: str, caption: str, full: bool = True) -> None:
            page.screenshot(path=str(OUT / f"{name}.png"), full_page=full)  # type: ignore[attr-defined]
            shots.append((name, caption))

        for page, key in ((wide, "admin"), (phone, "ana")):
            page.goto(hub.url + "/signin")
            if page is wide:
                shoot(page, "signin", "Sign-in with an API key (a server that has keys)", full=False)
            page.get_by_label("API key").fill(hub.keys[key])
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_text(f"Key {key}")).to_be_visible()

        started = hub.api("POST", "/v1/flows/demo/tour/executions", json={"inputs": {"name": "ana", "times": 3}})
        tour = started.json()["id"]
        hub.wait(tour, {"SUCCESS", "FAILED"})
        triage = hub.api("POST", "/v1/flows/support/triage/executions", json={"inputs": {"body": "The app crash"}})
        hub.wait(triage.json()["id"], {"SUCCESS", "FAILED"})

        wide.goto(hub.url + "/flows")
        shoot(wide, "flows", "Flows by namespace, with the last execution and the triggers")
        wide.goto(hub.url + "/flows/demo/tour")
        shoot(wide, "flow", "A flow: topology, highlighted source, inputs, revisions, executions")
        wide.goto(hub.url + "/flows/demo/tour/edit")
        editor = wide.get_by_label("Flow YAML")
        editor.fill(editor.input_value().replace("type: if", "type: iff"))
        expect(wide.locator("#problems")).to_contain_text("did you mean 'if'")
        shoot(wide, "editor", "The editor: checked as you type, errors at line and column", full=False)
        wide.goto(hub.url + "/flows/demo/greet/run")
        shoot(wide, "run", "The run form, generated from the flow's typed inputs", full=False)
        wide.goto(hub.url + f"/executions/{tour}")
        shoot(wide, "execution", "An execution: Gantt of its step runs (the retry wait hatched), steps, outputs, logs")
        wide.goto(hub.url + f"/executions/{triage.json()['id']}")
        shoot(wide, "execution-llm", "An execution with an LLM step: the call's prompt version, model, tokens, cost")
        wide.goto(hub.url + "/executions")
        shoot(wide, "executions", "Executions, filtered and paged", full=False)
        wide.goto(hub.url + f"/executions/{tour}/trace")
        wide.locator("details.span", has_text="step call").first.locator("summary").click()
        shoot(wide, "trace", "The trace waterfall, one span opened with its attributes and events")
        wide.goto(hub.url + "/prompts/triage")
        shoot(wide, "prompt", "A prompt: versions and labels, the diff, a label move gated by an eval")
        wide.goto(hub.url + f"/evals/{hub.eval_run}")
        shoot(wide, "eval", "An eval run: cases × prompt versions × models, assertions, cost and latency per cell")
        phone.goto(hub.url + "/approvals")
        shoot(phone, "approvals-phone", "The approvals inbox on a phone")
        phone.get_by_role("link", name="Refund request").click()
        shoot(phone, "approval-phone", "An approval request on a phone: message, the draft form, decide")
        wide.goto(hub.url + "/docs")
        expect(wide.get_by_text("/v1/flows/validate").first).to_be_visible()
        shoot(wide, "docs", "/docs: Swagger UI served from packaged files", full=False)
        browser.close()
    gallery = "\n".join(f"### {caption}\n\n![{caption}](console/{name}.png)\n" for name, caption in shots)
    text = DOC.read_text()
    block = f"{START}\n\n{gallery}\n{END}"
    DOC.write_text(re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S))
    print(f"{len(shots)} screenshots in {OUT.relative_to(ROOT)}; {DOC.relative_to(ROOT)} updated")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
