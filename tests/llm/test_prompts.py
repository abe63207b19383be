"""The prompt registry: versions from files, labels, resolution as of a time, pinning."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hub.errors import NotFound
from hub.prompts.registry import PromptRegistry
from hub.prompts.spec import PromptFileError, parse_prompt, parse_reference
from hub.store.store import Store


def edit(prompts: Path, name: str, old: str, new: str) -> None:
    path = prompts / f"{name}.yaml"
    path.write_text(path.read_text().replace(old, new))


@pytest.fixture
def registry(store: Store, prompts: Path) -> PromptRegistry:
    return PromptRegistry(store.engine, prompts)


def test_sync_stores_changed_files_as_new_versions(registry, prompts):
    first = {s.name: s for s in registry.sync()}
    assert set(first) == {"triage", "support_triage", "lead_qualifier"}
    assert all(s.version == 1 and s.created for s in first.values())
    assert not any(s.created for s in registry.sync())  # unchanged: no new version
    edit(prompts, "triage", "You triage tickets.", "You triage tickets carefully.")
    [changed] = [s for s in registry.sync(message="be careful") if s.created]
    assert (changed.name, changed.version) == ("triage", 2)
    versions = registry.versions("triage")
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[1]["message"] == "be careful"
    assert versions[0]["hash"] != versions[1]["hash"]
    assert versions[0]["labels"] == ["production"] and versions[1]["labels"] == ["latest"]


def test_resolution_by_label_and_by_version(registry, prompts):
    registry.sync()
    edit(prompts, "triage", "You triage tickets.", "v2")
    registry.sync()
    assert registry.resolve("triage@production").version == 1  # the first version is production
    assert registry.resolve("triage").version == 1  # a bare name means @production
    assert registry.resolve("triage@latest").version == 2
    assert registry.resolve("triage:2").spec.messages[0].content == "v2"
    registry.set_label("triage", "staging", 2)
    assert registry.resolve("triage@staging").version == 2
    with pytest.raises(NotFound, match="no label 'canary'"):
        registry.resolve("triage@canary")
    with pytest.raises(NotFound, match="no version 9"):
        registry.resolve("triage:9")
    with pytest.raises(NotFound, match="there is no prompt 'nope'"):
        registry.resolve("nope@production")


def test_promote_moves_a_label_and_keeps_history(registry, prompts):
    registry.sync()
    edit(prompts, "triage", "You triage tickets.", "v2")
    registry.sync()
    registry.set_label("triage", "staging", "latest")
    version, previous = registry.promote("triage", "staging", "production")
    assert (version, previous) == (2, 1)
    assert registry.labels("triage") == {"production": 2, "staging": 2}
    moves = [(m["label"], m["version"], m["previous"]) for m in registry.history("triage")]
    assert moves == [("production", 1, None), ("staging", 2, None), ("production", 2, 1)]
    with pytest.raises(ValueError, match="latest"):
        registry.set_label("triage", "latest", 1)


def test_labels_resolve_as_of_a_time(registry, prompts):
    registry.sync()
    before = time.time()
    time.sleep(0.01)
    edit(prompts, "triage", "You triage tickets.", "v2")
    registry.sync()
    registry.promote("triage", 2)
    assert registry.resolve("triage@production").version == 2
    assert registry.resolve("triage@production", as_of=before).version == 1
    assert registry.resolve("triage@latest", as_of=before).version == 1


def test_latest_as_of_a_start_is_the_file_edited_before_it(registry, prompts):
    import os

    registry.sync()
    started = time.time()
    edit(prompts, "triage", "You triage tickets.", "v2")  # edited before the execution started
    os.utime(prompts / "triage.yaml", (started - 60, started - 60))
    assert registry.resolve("triage@latest", as_of=started).version == 2  # stored only now, yet latest then
    edit(prompts, "triage", "v2", "v3")  # edited while the execution runs
    os.utime(prompts / "triage.yaml", (started + 60, started + 60))
    assert registry.resolve("triage@latest", as_of=started).version == 2
    assert registry.resolve("triage@latest").version == 3


def test_a_step_keeps_its_pinned_version(registry, prompts):
    registry.sync()
    assert registry.resolve_for_step("triage@production", "exec1", "ask").version == 1
    edit(prompts, "triage", "You triage tickets.", "v2")
    registry.sync()
    registry.promote("triage", 2)
    assert registry.resolve_for_step("triage@production", "exec1", "ask").version == 1  # re-run
    assert registry.resolve_for_step("triage@production", "exec2", "ask").version == 2
    assert [p["version"] for p in registry.pins("exec1")] == [1]


def test_diff_two_versions(registry, prompts):
    registry.sync()
    edit(prompts, "triage", "You triage tickets.", "You triage tickets carefully.")
    registry.sync()
    diff = registry.diff("triage", 1, "latest")
    assert "--- triage:1" in diff and "+++ triage:2" in diff
    assert "-    content: You triage tickets." in diff and "+    content: You triage tickets carefully." in diff


def test_names_lists_prompts_with_labels(registry):
    registry.sync()
    names = {p["name"]: p for p in registry.names()}
    assert names["triage"]["labels"] == {"production": 1} and names["triage"]["latest"] == 1
    assert names["support_triage"]["tags"] == ["support", "triage"]


def test_prompt_files_are_validated():
    with pytest.raises(PromptFileError, match="undeclared variable"):
        parse_prompt("name: x\nmessages: [{role: user, content: '{{ who }}'}]\n")
    with pytest.raises(PromptFileError, match="messages"):
        parse_prompt("name: x\n")
    with pytest.raises(PromptFileError, match="unknown key 'mesages'; did you mean 'messages'"):
        parse_prompt("name: x\nmesages: []\nmessages: [{role: user, content: hi}]\n")
    spec = parse_prompt("name: x\nvariables: [who]\nmessages: [{role: user, content: 'Hi {{ who }}'}]\n")
    assert spec.render({"who": "{{ 7 * 7 }}"})[0]["content"] == "Hi {{ 7 * 7 }}"  # values stay data
    with pytest.raises(ValueError, match="prompt 'x' declares no variable 'extra'"):
        spec.render({"who": "a", "extra": 1})


def test_references_parse():
    assert parse_reference("a@staging").label == "staging"
    assert parse_reference("a:3").version == 3
    assert parse_reference("a").label == "production"
    for bad in ("a@", "a:x", "a:0", "@x"):
        with pytest.raises(ValueError):
            parse_reference(bad)
