"""llm.chat over both transports (the OpenAI wire format spoken directly, and litellm), served by
a scripted OpenAI-compatible server."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from sqlalchemy import select

from hub.llm.budget import BudgetExceeded
from hub.llm.chat import Chat, ChatParams, OutputInvalid
from hub.llm.client import LLMTimeout
from hub.llm.fake import Reply
from hub.llm.records import CACHE, CallLog
from hub.store.store import Store

pytestmark = pytest.mark.anyio

GOOD = '{"category": "billing", "urgency": "high"}'


async def ask(ctx: Any, **params: Any) -> Any:
    params.setdefault("prompt", "triage@production")
    params.setdefault("vars", {"body": "I was charged twice"})
    return await Chat().run(ctx, ChatParams.model_validate(params))


def calls(ctx: Any) -> list[dict[str, Any]]:
    return CallLog(ctx.store.engine).calls(ctx.execution_id)


async def test_valid_json_first_try_is_the_output_and_one_record(contexts, fake):
    fake.enqueue(Reply(GOOD, prompt_tokens=100, completion_tokens=20))
    ctx = contexts.make()
    out = await ask(ctx)
    assert out["value"] == {"category": "billing", "urgency": "high"}
    assert out["prompt"]["name"] == "triage" and out["prompt"]["version"] == 1
    assert out["rounds"] == 1 and out["cached"] is False
    [record] = calls(ctx)
    assert record["status"] == "ok"
    assert (record["prompt_name"], record["prompt_version"]) == ("triage", 1)
    assert record["prompt_hash"] == out["prompt"]["hash"]
    assert record["model_requested"] == "fast" and record["model"] == "fast"
    assert record["litellm_model"] == "openai/gpt-4o-mini" and record["provider"] == "openai"
    assert (record["input_tokens"], record["output_tokens"]) == (100, 20)
    # gpt-4o-mini from litellm's local price map: $0.15 / 1M in, $0.60 / 1M out
    assert record["cost"] == pytest.approx(100 * 0.15e-6 + 20 * 0.6e-6)
    assert record["latency_ms"] > 0 and record["retries"] == 0 and not record["fallback_used"]
    # the prompt was rendered with the variables and its default, the schema appended
    request = fake.requests[0]
    assert request["model"] == "gpt-4o-mini" and request["temperature"] == 0
    assert request["messages"][1]["content"] == "Tier free. Ticket: I was charged twice"
    assert '"enum"' in request["messages"][0]["content"]


async def test_invalid_json_is_repaired_with_the_errors_sent_back(contexts, fake):
    fake.enqueue("Sure! The category is billing.", GOOD)
    ctx = contexts.make()
    out = await ask(ctx)
    assert out["value"]["category"] == "billing" and out["rounds"] == 2
    first, second = calls(ctx)
    assert first["status"] == "invalid" and "not valid JSON" in first["errors"][0]
    assert first["response"] == "Sure! The category is billing."
    assert second["status"] == "ok" and second["round"] == 2
    repair = fake.requests[1]["messages"]
    assert repair[-2] == {"role": "assistant", "content": "Sure! The category is billing."}
    assert "not valid JSON" in repair[-1]["content"]
    assert out["usage"]["calls"] == 2


async def test_schema_violation_is_repaired(contexts, fake):
    fake.enqueue('{"category": "refund", "urgency": "high"}', "```json\n" + GOOD + "\n```")
    ctx = contexts.make()
    out = await ask(ctx)
    assert out["value"] == json.loads(GOOD)
    assert "'refund' is not one of" in calls(ctx)[0]["errors"][0]


async def test_still_invalid_fails_with_every_attempt_stored(contexts, fake):
    fake.enqueue("nope", '{"category": "bug"}', '{"category": "x", "urgency": "low"}')
    ctx = contexts.make()
    with pytest.raises(OutputInvalid) as failed:
        await ask(ctx, max_repairs=2)
    assert failed.value.retryable is False
    attempts = failed.value.to_dict()["data"]["attempts"]
    assert [a["raw"] for a in attempts] == ["nope", '{"category": "bug"}', '{"category": "x", "urgency": "low"}']
    assert all(a["errors"] for a in attempts)
    records = calls(ctx)
    assert [r["status"] for r in records] == ["invalid", "invalid", "invalid"]
    assert [r["round"] for r in records] == [1, 2, 3]
    assert len(fake.requests) == 3


async def test_rules_and_python_validator_run_after_the_schema(contexts, fake):
    fake.enqueue('{"category": "bug", "urgency": "low"}', GOOD)
    ctx = contexts.make()
    out = await ask(ctx, rules=[{"field": "category", "one_of": ["billing"]}])
    assert out["rounds"] == 2
    assert "must be one of" in calls(ctx)[0]["errors"][0]
    fake.enqueue(GOOD, '{"category": "billing", "urgency": "low"}')
    ctx = contexts.make()
    out = await ask(ctx, validator="tests.llm.llm_test_helpers:only_low_urgency")
    assert out["value"]["urgency"] == "low"
    assert calls(ctx)[0]["errors"] == ["urgency must be low in tests"]


async def test_rate_limit_is_retried_then_succeeds(contexts, fake):
    fake.enqueue(Reply(status=429, headers={"Retry-After": "0"}), Reply(GOOD))
    ctx = contexts.make()
    out = await ask(ctx)
    assert out["value"]["category"] == "billing"
    [record] = calls(ctx)
    assert record["retries"] == 1 and record["status"] == "ok"
    assert len(fake.requests) == 2


async def test_primary_failing_falls_back_and_records_it(contexts, fake):
    contexts.client.settings.num_retries = 0  # straight to the fallback (retries are pinned above)
    fake.enqueue(Reply(status=500), model="primary-m")
    fake.enqueue(Reply(GOOD, prompt_tokens=1000, completion_tokens=100), model="backup-m")
    ctx = contexts.make()
    out = await ask(ctx, model="primary")
    assert out["model"] == "backup"
    [record] = calls(ctx)
    assert record["model_requested"] == "primary" and record["model"] == "backup"
    assert record["litellm_model"] == "openai/backup-m" and record["fallback_used"] is True
    assert record["cost"] == pytest.approx(1000 * 0.000001 + 100 * 0.000002)  # backup's configured price
    assert [r["model"] for r in fake.requests] == ["primary-m", "backup-m"]


async def test_context_window_overflow_falls_back(contexts, fake):
    fake.enqueue(Reply.context_overflow(), model="small-m")
    fake.enqueue(Reply(GOOD), model="backup-m")
    ctx = contexts.make()
    out = await ask(ctx, model="small")
    assert out["model"] == "backup"
    assert [r["model"] for r in fake.requests] == ["small-m", "backup-m"]  # no retry of the overflow


async def test_provider_timeout_fails_the_step_and_is_recorded(contexts, fake):
    fake.default = Reply(GOOD, delay=1.0)
    contexts.client.settings.num_retries = 0
    ctx = contexts.make()
    with pytest.raises(LLMTimeout) as failed:
        await ask(ctx, request_timeout=0.2)
    assert failed.value.retryable is True
    assert "did not answer within 0.2s" in str(failed.value)
    [record] = calls(ctx)
    assert record["status"] == "error" and record["errors"][0]["type"] == "LLMTimeout"
    assert len(fake.requests) == 1


async def test_server_error_after_retries_is_a_retryable_connector_error(contexts, fake):
    fake.default = Reply(status=503)
    ctx = contexts.make()
    with pytest.raises(Exception) as failed:
        await ask(ctx)
    assert type(failed.value).__name__ == "ConnectorError"
    assert failed.value.status == 503 and failed.value.retryable
    assert len(fake.requests) == 2  # the first try and one retry


async def test_tokens_and_cost_are_summed_per_execution(contexts, fake):
    fake.enqueue(Reply(GOOD, prompt_tokens=10, completion_tokens=5), model="llama-local")
    fake.enqueue(Reply("nope", prompt_tokens=20, completion_tokens=7), model="llama-local")
    fake.enqueue(Reply(GOOD, prompt_tokens=30, completion_tokens=9), model="llama-local")
    execution = contexts.execution()
    await ask(contexts.make(execution, path="one"), model="local")
    await ask(contexts.make(execution, path="two"), model="local")
    totals = CallLog(contexts.store.engine).totals(execution)
    assert totals["calls"] == 3
    assert (totals["input_tokens"], totals["output_tokens"]) == (60, 21)
    assert totals["cost"] == pytest.approx(60 * 0.001 + 21 * 0.002)


async def test_max_cost_stops_the_execution(contexts, fake):
    flow = "id: demo\nmax_cost: 0.05\ntasks: [{id: a, type: log, message: hi}]\n"
    execution = contexts.execution(flow)
    fake.default = Reply(GOOD, prompt_tokens=20, completion_tokens=10)  # $0.04 on 'local'
    out = await ask(contexts.make(execution, path="one"), model="local")
    assert out["usage"]["cost"] == pytest.approx(0.04)
    with pytest.raises(BudgetExceeded) as failed:
        await ask(contexts.make(execution, path="two"), model="local")  # spends to $0.08
    assert failed.value.retryable is False
    assert "max_cost $0.05" in str(failed.value) and failed.value.spent == pytest.approx(0.08)
    requests = len(fake.requests)
    with pytest.raises(BudgetExceeded):
        await ask(contexts.make(execution, path="three"), model="local")
    assert len(fake.requests) == requests  # over budget: no further call is made


async def test_cache_hit_makes_no_second_call(contexts, fake):
    fake.enqueue(Reply(GOOD, prompt_tokens=10, completion_tokens=5))
    first = await ask(contexts.make(), cache=True)
    ctx = contexts.make()
    second = await ask(ctx, cache={"ttl": "1h"})
    assert len(fake.requests) == 1
    assert second["value"] == first["value"] and second["cached"] is True
    [record] = calls(ctx)
    assert record["cached"] is True and record["cost"] == 0 and record["input_tokens"] == 0
    # a different input is a different key
    fake.enqueue(Reply(GOOD))
    await ask(contexts.make(), cache=True, vars={"body": "something else"})
    assert len(fake.requests) == 2


def test_cache_put_replaces_its_key_and_drops_expired_entries(contexts, monkeypatch):
    from hub.llm import records

    log = CallLog(contexts.store.engine)
    log.cache_put("old", "fast", {"text": "a"}, ttl=3600)
    with log.engine.begin() as conn:  # as if its TTL had run out
        conn.execute(CACHE.update().where(CACHE.c.key == "old").values(expires_at=0))
    log.cache_put("k", "fast", {"text": "b"}, ttl=3600)
    log.cache_put("k", "fast", {"text": "c"}, ttl=3600)
    assert log.cache_get("k") == {"text": "c"} and log.cache_get("old") is None  # replaced; expired is never served
    with log.engine.connect() as conn:  # removed at most once a minute, not by every write
        assert sorted(r.key for r in conn.execute(select(CACHE.c.key))) == ["k", "old"]
    monkeypatch.setattr(records, "CACHE_PURGE_EVERY", 0.0)
    log.cache_put("k", "fast", {"text": "d"}, ttl=3600)
    with log.engine.connect() as conn:
        assert [r.key for r in conn.execute(select(CACHE.c.key))] == ["k"]
    assert log.cache_get("k") == {"text": "d"}


async def test_inline_messages_without_a_prompt(contexts, fake):
    fake.enqueue("Hello there")
    ctx = contexts.make()
    out = await Chat().run(ctx, ChatParams(messages=[{"role": "user", "content": "Say hello"}]))
    assert out["value"] == "Hello there" and out["prompt"] is None
    assert calls(ctx)[0]["prompt_name"] is None


async def test_inline_output_schema(contexts, fake):
    fake.enqueue('{"n": "x"}', '{"n": 3}')
    out = await Chat().run(
        contexts.make(),
        ChatParams(
            messages=[{"role": "user", "content": "A number"}],
            output_schema={"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
        ),
    )
    assert out["value"] == {"n": 3}


async def test_pydantic_output_model(contexts, fake):
    fake.enqueue('{"score": 2, "segment": "smb"}', '{"score": 0.5, "segment": "smb"}')
    out = await Chat().run(
        contexts.make(),
        ChatParams(messages=[{"role": "user", "content": "Score"}], output_model="tests.llm.llm_test_helpers:Lead"),
    )
    assert out["value"] == {"score": 0.5, "segment": "smb"} and out["rounds"] == 2


async def test_mock_response_alias_needs_no_server(contexts, tmp_path):
    from hub.llm.client import LLMClient
    from hub.llm.settings import LLMSettings, ModelsConfig

    config = ModelsConfig.model_validate({"models": {"mock": {"model": "openai/gpt-4o-mini", "mock_response": GOOD}}})
    client = LLMClient(LLMSettings(models_file=tmp_path / "none.yaml"), config)
    out = await ask(contexts.make(llm=client), model="mock")
    assert out["value"]["urgency"] == "high"


async def test_missing_variable_fails_without_calling(contexts, fake):
    from hub.errors import TaskError

    with pytest.raises(TaskError, match="needs variable 'body'"):
        await ask(contexts.make(), vars={})
    assert fake.requests == []


def test_a_models_file_that_does_not_validate_says_where_in_one_line(tmp_path):
    from hub.llm.settings import LLMSettings

    (tmp_path / "models.yaml").write_text("models:\n  fast: {model: openai/x, fallbacks: [slow]}\n  odd: {modle: y}\n")
    with pytest.raises(ValueError) as raised:
        LLMSettings(models_file=tmp_path / "models.yaml").load_models()
    assert str(raised.value) == (
        f"{tmp_path / 'models.yaml'}: models.odd.model: Field required; models.odd.modle: Extra inputs are not permitted"
    )
    with pytest.raises(ValueError, match="with HUB_LLM_MODELS: model 'fast' falls back to 'slow', which is not defined"):
        LLMSettings(models_file=tmp_path / "none.yaml", models={"fast": {"model": "openai/x", "fallbacks": ["slow"]}}).load_models()


def test_an_api_base_that_is_not_an_http_url_is_refused_when_the_models_load(tmp_path):
    # it would fail every call (and be retried, then fall back) with an aiohttp error naming no setting
    from hub.llm.settings import LLMSettings

    (tmp_path / "models.yaml").write_text("models:\n  local: {model: openai/llama3.1, api_base: 'localhost:11434/v1'}\n")
    with pytest.raises(ValueError, match=r"models.local.api_base: 'localhost:11434/v1' is not an http:// or https:// URL"):
        LLMSettings(models_file=tmp_path / "models.yaml").load_models()
    with pytest.raises(ValueError, match="is not an http:// or https:// URL"):
        LLMSettings(api_base="localhost:11434/v1")


@pytest.mark.parametrize("through", ["writer", "engine"])
def test_the_cache_round_trips_an_answer_on_both_databases(store: Store, through: str) -> None:
    """A cached answer is written and read by prepared statements: on SQLite through the store's
    writer connection (or the engine's pool without a store), on PostgreSQL through the pool;
    the JSON comes back as it went in, a later put replaces it, an expired one is never served."""
    log = CallLog(store.engine, store if through == "writer" else None)
    answer = {"text": "héllo \u2603", "value": {"n": [1, 2.5, None], "ok": True}, "usage": {"input_tokens": 3}}
    assert log.cache_get("key-1") is None
    log.cache_put("key-1", "fast", answer, ttl=60)
    assert log.cache_get("key-1") == answer
    log.cache_put("key-1", "smart", {"text": "newer"}, ttl=60)
    assert log.cache_get("key-1") == {"text": "newer"}
    assert log.cache_get("key-1", now=time.time() + 120) is None  # past its TTL
    with store.engine.connect() as conn:
        assert [(r.key, r.model) for r in conn.execute(select(CACHE.c.key, CACHE.c.model))] == [("key-1", "smart")]
