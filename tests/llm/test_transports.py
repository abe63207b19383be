"""The model client's transports and its own retry and fallback policy: which alias takes which
path, and how each kind of provider failure comes out (both transports, the same hub errors)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from hub.errors import ConnectorError
from hub.llm.client import ContextWindowExceeded, LLMClient, LLMTimeout
from hub.llm.fake import Reply
from hub.llm.settings import LLMSettings, ModelsConfig, ModelSpec
from hub.llm.transports import wants_openai
from hub.testing import serve_app

pytestmark = pytest.mark.anyio
MESSAGES = [{"role": "user", "content": "hello there"}]


def test_auto_speaks_openai_directly_only_to_an_openai_compatible_server():
    assert wants_openai(ModelSpec(model="openai/llama3.1", api_base="http://127.0.0.1:1/v1"))
    assert not wants_openai(ModelSpec(model="openai/gpt-4o-mini"))  # OpenAI itself: litellm maps its params
    assert not wants_openai(ModelSpec(model="anthropic/claude-3-5-sonnet", api_base="http://x/v1"))
    assert not wants_openai(ModelSpec(model="openai/x", api_base="http://x/v1", mock_response="hi"))
    assert wants_openai(ModelSpec(model="openai/gpt-4o-mini", transport="openai"))
    assert not wants_openai(ModelSpec(model="openai/x", api_base="http://x/v1", transport="litellm"))
    # mock_response answers without calling anything, whatever the transport
    assert not wants_openai(ModelSpec(model="openai/x", api_base="http://x/v1", mock_response="hi", transport="openai"))


async def test_a_rejected_key_is_not_retried_nor_retryable(client, fake):
    fake.enqueue(Reply(status=401, error="Incorrect API key provided"))
    with pytest.raises(ConnectorError) as failed:
        await client.complete("fast", MESSAGES)
    assert failed.value.status == 401 and failed.value.retryable is False
    assert "rejected the API key" in str(failed.value) and "Incorrect API key" in str(failed.value)
    assert len(fake.requests) == 1


async def test_a_bad_request_is_not_retried(client, fake):
    fake.enqueue(Reply(status=400, error="temperature must be at most 2"))
    with pytest.raises(ConnectorError) as failed:
        await client.complete("fast", MESSAGES)
    assert failed.value.status == 400 and failed.value.retryable is False
    assert "temperature must be at most 2" in str(failed.value)
    assert len(fake.requests) == 1


async def test_a_retry_after_the_provider_asks_for_is_honoured_and_counted(client, fake):
    fake.enqueue(Reply(status=503, headers={"Retry-After": "0"}), Reply("fine"))
    answer = await client.complete("fast", MESSAGES)
    assert answer.text == "fine" and answer.retries == 1 and answer.fallbacks == 0
    assert answer.model == "fast" and not answer.fallback_used


async def test_a_retry_after_longer_than_a_minute_ends_the_tries(client, fake):
    fake.enqueue(Reply(status=429, headers={"Retry-After": "3600"}), Reply("never asked"))
    with pytest.raises(ConnectorError) as failed:
        await client.complete("fast", MESSAGES)
    assert failed.value.status == 429 and failed.value.retryable is True
    assert failed.value.retry_after == pytest.approx(3600)  # the step's retry policy can wait that long
    assert len(fake.requests) == 1


async def test_rate_limited_primary_falls_back_after_its_retries(client, fake):
    fake.enqueue(*[Reply(status=429, headers={"Retry-After": "0"})] * 2, model="primary-m")
    fake.enqueue(Reply("from backup"), model="backup-m")
    answer = await client.complete("primary", MESSAGES)
    assert (answer.text, answer.model, answer.model_requested) == ("from backup", "backup", "primary")
    assert answer.retries == 1 and answer.fallbacks == 1 and answer.fallback_used
    assert [r["model"] for r in fake.requests] == ["primary-m", "primary-m", "backup-m"]


async def test_an_unreachable_provider_is_a_retryable_connection_error(tmp_path: Path, transport: str):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = ModelsConfig.model_validate({"models": {"gone": {
        "model": "openai/gone", "api_base": f"http://127.0.0.1:{port}/v1", "api_key": "k", "transport": transport,
    }}})
    client = LLMClient(LLMSettings(models_file=tmp_path / "none.yaml", num_retries=0, timeout=5), config)
    with pytest.raises(ConnectorError) as failed:
        await client.complete("gone", MESSAGES)
    assert failed.value.retryable is True and "cannot reach the provider" in str(failed.value)


async def test_a_timeout_names_the_seconds_and_is_retryable(client, fake):
    client.settings.num_retries = 0
    fake.enqueue(Reply("late", delay=1.0))
    with pytest.raises(LLMTimeout) as failed:
        await client.complete("fast", MESSAGES, timeout=0.2)
    assert "did not answer within 0.2s" in str(failed.value) and failed.value.retryable


async def test_an_answer_that_is_not_a_completion_is_a_retryable_provider_error(tmp_path: Path):
    async def broken(scope, receive, send):  # an "OpenAI-compatible" server that answers HTML
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]})
        await send({"type": "http.response.body", "body": b"<html>gateway</html>"})

    with serve_app(broken) as base:
        config = ModelsConfig.model_validate({"models": {"odd": {"model": "openai/odd", "api_base": f"{base}/v1"}}})
        client = LLMClient(LLMSettings(models_file=tmp_path / "none.yaml", num_retries=0), config)
        with pytest.raises(ConnectorError) as failed:
            await client.complete("odd", MESSAGES)
    assert failed.value.status == 502 and failed.value.retryable
    assert "not a JSON object" in str(failed.value)


async def test_a_model_missing_from_the_price_map_costs_nothing(client, fake):
    fake.enqueue(Reply("hi", prompt_tokens=1000, completion_tokens=1000), model="primary-m")
    answer = await client.complete("primary", MESSAGES)  # openai/primary-m: no price, not in the map
    assert answer.cost == 0.0 and answer.input_tokens == 1000


async def test_embeddings_come_back_in_input_order(client, fake):
    result = await client.embed("fast", ["alpha beta", "gamma"])
    assert len(result.vectors) == 2 and result.input_tokens == 3
    assert result.vectors[0] != result.vectors[1]
    assert fake.embedding_requests[-1]["input"] == ["alpha beta", "gamma"]


async def test_open_connections_are_capped_and_the_others_wait_their_turn(fake, tmp_path: Path):
    import asyncio

    from tests.llm.conftest import models_for

    for _ in range(100):  # requests earlier tests abandoned (timeouts) may still be sleeping in the fake
        if not fake.in_flight:
            break
        await asyncio.sleep(0.05)
    fake.reset(Reply("slow", delay=0.2))
    capped = LLMClient(LLMSettings(models_file=tmp_path / "none.yaml", max_connections=2), models_for(fake.api_base))
    answers = await asyncio.gather(*(capped.complete("fast", MESSAGES) for _ in range(6)))
    assert [a.text for a in answers] == ["slow"] * 6 and fake.max_in_flight == 2
    await capped.aclose()
    fake.reset(Reply("slow", delay=0.2))
    wide = LLMClient(LLMSettings(models_file=tmp_path / "none.yaml"), models_for(fake.api_base))
    await asyncio.gather(*(wide.complete("fast", MESSAGES) for _ in range(6)))
    assert fake.max_in_flight == 6
    await wide.aclose()


async def test_an_overflow_reported_the_way_llama_cpp_words_it_goes_to_the_context_window_fallbacks(client, fake):
    overflow = "the request exceeds the available context size, try increasing it"
    fake.enqueue(Reply(status=400, error=overflow), model="small-m")
    answer = await client.complete("small", MESSAGES)  # small: context_window_fallbacks [backup]
    assert answer.model == "backup" and answer.fallbacks == 1
    client.settings.num_retries = 0
    fake.enqueue(Reply(status=400, error=overflow), model="backup-m")
    with pytest.raises(ContextWindowExceeded):
        await client.complete("backup", MESSAGES)


async def test_an_openai_compatible_server_gets_openai_api_key_when_the_alias_names_no_key(
    fake, tmp_path: Path, transport: str, monkeypatch: pytest.MonkeyPatch
):
    # what litellm (and the OpenAI SDK) do: a gateway keyed through OPENAI_API_KEY keeps working
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    config = ModelsConfig.model_validate({"models": {
        "gateway": {"model": "openai/gw-m", "api_base": fake.api_base, "transport": transport},
    }})
    client = LLMClient(LLMSettings(models_file=tmp_path / "none.yaml", num_retries=0), config)
    await client.complete("gateway", MESSAGES)
    assert fake.request_headers[-1]["authorization"] == "Bearer sk-from-env"


def _client(tmp_path: Path, api_base: str, transport: str, models: dict[str, dict[str, object]], **settings: object) -> LLMClient:
    config = ModelsConfig.model_validate({"models": {
        name: {"api_base": api_base, "api_key": "k", "transport": transport, **spec} for name, spec in models.items()
    }})
    return LLMClient(LLMSettings(models_file=tmp_path / "none.yaml", **settings), config)  # type: ignore[arg-type]


async def test_extra_body_and_extra_headers_are_merged_into_the_request(fake, tmp_path: Path, transport: str):
    client = _client(tmp_path, fake.api_base, transport, {"vllm": {
        "model": "openai/vllm-m",
        "params": {"extra_body": {"guided_choice": ["yes", "no"]}, "extra_headers": {"X-Title": "hub"}},
    }}, num_retries=0)
    await client.complete("vllm", MESSAGES, {"temperature": 0})
    body, headers = fake.requests[-1], fake.request_headers[-1]
    assert body["guided_choice"] == ["yes", "no"] and body["temperature"] == 0
    assert "extra_body" not in body and "extra_headers" not in body
    assert headers["x-title"] == "hub"


async def test_the_environment_proxy_is_used(fake, tmp_path: Path, transport: str, monkeypatch: pytest.MonkeyPatch):
    # HTTP_PROXY / NO_PROXY as litellm honoured them: the fake stands in for the proxy here
    for name in ("NO_PROXY", "no_proxy", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", fake.api_base.removesuffix("/v1"))
    client = _client(tmp_path, "http://llm.invalid/v1", transport, {"remote": {"model": "openai/remote-m"}}, num_retries=0)
    answer = await client.complete("remote", MESSAGES)
    assert answer.text == "ok" and fake.request_headers[-1]["host"] == "llm.invalid"
    await client.aclose()


def test_an_event_loop_that_ended_is_not_kept_alive_by_the_client(fake, tmp_path: Path):
    import asyncio
    import gc
    import weakref

    client = _client(tmp_path, fake.api_base, "openai", {"m": {"model": "openai/m"}}, num_retries=0)

    async def ask() -> weakref.ref[asyncio.AbstractEventLoop]:
        await client.complete("m", MESSAGES)
        return weakref.ref(asyncio.get_running_loop())

    loops = [asyncio.run(ask()) for _ in range(3)]  # hub.testing.run_flow runs a loop per call
    gc.collect()
    assert [loop() for loop in loops] == [None] * 3


async def test_a_fallback_that_fails_goes_on_to_its_own_fallbacks(fake, tmp_path: Path, transport: str):
    # as litellm's Router did: a -> b, and when b fails too, b -> c (depth first, each alias once)
    client = _client(tmp_path, fake.api_base, transport, {
        "a": {"model": "openai/a-m", "fallbacks": ["b", "d"]},
        "b": {"model": "openai/b-m", "fallbacks": ["c", "a"]},
        "c": {"model": "openai/c-m"},
        "d": {"model": "openai/d-m"},
    }, num_retries=0)
    fake.enqueue(Reply(status=500), model="a-m")
    fake.enqueue(Reply(status=500), model="b-m")
    fake.enqueue(Reply("from c"), model="c-m")
    answer = await client.complete("a", MESSAGES)
    assert (answer.text, answer.model, answer.fallbacks) == ("from c", "c", 2)
    assert [r["model"] for r in fake.requests] == ["a-m", "b-m", "c-m"]


async def test_retry_after_ms_is_read_before_retry_after(client, fake):
    fake.enqueue(Reply(status=429, headers={"retry-after-ms": "10", "Retry-After": "3600"}), Reply("fine"))
    answer = await client.complete("fast", MESSAGES)
    assert answer.text == "fine" and answer.retries == 1  # waited 10 ms, not an hour (which ends the tries)


def test_the_chain_warmed_for_a_model_includes_fallbacks_of_fallbacks(tmp_path: Path):
    config = ModelsConfig.model_validate({"models": {
        "a": {"model": "openai/a", "api_base": "http://x/v1", "fallbacks": ["b"]},
        "b": {"model": "openai/b", "api_base": "http://x/v1", "fallbacks": ["c"], "context_window_fallbacks": ["a"]},
        "c": {"model": "anthropic/c"},
    }})
    client = LLMClient(LLMSettings(models_file=tmp_path / "none.yaml"), config)
    assert client._chain("a") == ["a", "b", "c"]


async def test_embeddings_fall_back_and_say_which_alias_answered(fake, tmp_path: Path, transport: str):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        gone = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    client = _client(tmp_path, fake.api_base, transport, {
        "down": {"model": "openai/down-m", "api_base": gone, "fallbacks": ["up"]},
        "up": {"model": "openai/up-m"},
    }, num_retries=0)
    result = await client.embed("down", ["alpha"])
    assert (result.model, result.litellm_model) == ("up", "openai/up-m")
    assert fake.embedding_requests[-1]["model"] == "up-m"


def test_litellm_is_imported_at_start_up_only_when_an_alias_needs_it():
    from hub.llm.client import needs_litellm

    def config(**spec: object) -> ModelsConfig:
        return ModelsConfig.model_validate({"models": {"m": spec}})

    direct = {"model": "openai/x", "api_base": "http://127.0.0.1:1/v1"}
    assert not needs_litellm(config(**direct, input_cost_per_token=0))  # priced, direct: never
    assert needs_litellm(config(**direct))  # priced from litellm's map
    assert needs_litellm(config(model="anthropic/claude-3-5-sonnet"))
    assert needs_litellm(config(**direct, input_cost_per_token=0, transport="litellm"))
    assert needs_litellm(ModelsConfig())  # no aliases: names go to litellm
