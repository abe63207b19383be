"""slack.post / slack.update with the real slack_sdk client against a fake Slack Web API."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.slack.client import post_message, update_message
from connectors.slack.tasks import SlackPost, SlackPostParams, SlackUpdate, SlackUpdateParams
from hub.errors import ConnectorError, TaskError
from hub.net import BlockedAddress
from hub.settings import HubSettings
from hub.store.store import Store
from hub.tasks.base import TaskContext
from tests.fakes.server import serve
from tests.fakes.slack_api import FakeSlack

pytestmark = pytest.mark.anyio

BLOCKS = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "*New lead* ana@example.com"}},
    {
        "type": "actions",
        "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Approve"}, "value": "yes"}],
    },
]


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSlack]:
    fake = FakeSlack(tokens={"xoxb-env", "xoxb-secret"}, channels={"C0SALES": "sales", "C0OPS": "ops"})
    with serve(fake.app) as url:
        monkeypatch.setenv("HUB_SLACK_BASE_URL", f"{url}/api/")
        monkeypatch.setenv("HUB_SLACK_BOT_TOKEN", "xoxb-env")
        monkeypatch.setenv("HUB_HTTP_ALLOW_HOSTS", "127.0.0.1")
        yield fake


def make_ctx(tmp_path: Path, store: Store | None = None, path: str = "notify") -> TaskContext:
    return TaskContext(
        execution_id="exec1",
        namespace="test",
        flow_id="f",
        task_id=path,
        path=path,
        attempt=1,
        settings=HubSettings(home=tmp_path),
        store=store,
    )


async def test_post_text_and_blocks_then_update(slack: FakeSlack, tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    out = await SlackPost().run(ctx, SlackPostParams(channel="#sales", text="New lead", blocks=BLOCKS))
    assert out["channel"] == "C0SALES" and out["ts"]
    call = slack.calls[-1]
    assert call.method == "chat.postMessage"
    assert call.token == "xoxb-env"
    assert call.content_type == "application/json"
    assert call.body == {"channel": "#sales", "text": "New lead", "blocks": BLOCKS}

    updated = await SlackUpdate().run(
        ctx, SlackUpdateParams(channel=out["channel"], ts=out["ts"], text="Approved by Ana")
    )
    assert updated == {"channel": "C0SALES", "ts": out["ts"]}
    assert slack.messages[("C0SALES", out["ts"])]["text"] == "Approved by Ana"


async def test_thread_reply_and_token_param(slack: FakeSlack, tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    parent = await SlackPost().run(ctx, SlackPostParams(channel="C0OPS", text="deploy started"))
    reply = await SlackPost().run(
        make_ctx(tmp_path, path="reply"),
        SlackPostParams(
            channel="C0OPS", text="done", thread_ts=parent["ts"], reply_broadcast=True, token="xoxb-secret"
        ),
    )
    assert reply["thread_ts"] == parent["ts"]
    call = slack.calls[-1]
    assert call.token == "xoxb-secret"
    assert call.body["reply_broadcast"] is True and call.body["thread_ts"] == parent["ts"]


async def test_rate_limit_waits_for_retry_after_then_succeeds(slack: FakeSlack, tmp_path: Path) -> None:
    slack.rate_limit("chat.postMessage", retry_after=0, times=2)
    out = await SlackPost().run(make_ctx(tmp_path), SlackPostParams(channel="C0OPS", text="hi"))
    assert out["ts"]
    assert len(slack.posted()) == 3


async def test_long_rate_limit_surfaces_retry_after(slack: FakeSlack, tmp_path: Path) -> None:
    slack.rate_limit("chat.postMessage", retry_after=120)
    with pytest.raises(ConnectorError) as info:
        await SlackPost().run(make_ctx(tmp_path), SlackPostParams(channel="C0OPS", text="hi"))
    error = info.value
    assert error.status == 429 and error.retryable and error.retry_after == 120
    assert len(slack.posted()) == 1


@pytest.mark.parametrize(
    ("setup", "params", "expected", "retryable"),
    [
        (None, {"channel": "#nope", "text": "x"}, "channel_not_found", False),
        (None, {"channel": "C0OPS", "blocks": [{"text": "no type"}]}, "invalid_blocks", False),
        (("fail", "not_in_channel"), {"channel": "C0OPS", "text": "x"}, "invite the app", False),
        (("fail", "internal_error"), {"channel": "C0OPS", "text": "x"}, "internal_error", True),
        (("status", 503), {"channel": "C0OPS", "text": "x"}, "http_503", True),
    ],
)
async def test_slack_errors_become_connector_errors(
    slack: FakeSlack, tmp_path: Path, setup: tuple | None, params: dict, expected: str, retryable: bool
) -> None:
    if setup and setup[0] == "fail":
        slack.fail("chat.postMessage", setup[1])
    elif setup:
        slack._failures["chat.postMessage"] = [(setup[1], {}, {})]
    with pytest.raises(ConnectorError) as info:
        await SlackPost().run(make_ctx(tmp_path), SlackPostParams(**params))
    assert expected in str(info.value)
    assert info.value.retryable is retryable


async def test_invalid_token_says_how_to_fix(slack: FakeSlack, tmp_path: Path) -> None:
    with pytest.raises(ConnectorError, match="invalid_auth.*HUB_SLACK_BOT_TOKEN"):
        await SlackPost().run(make_ctx(tmp_path), SlackPostParams(channel="C0OPS", text="x", token="xoxb-wrong"))


async def test_missing_token_names_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUB_SLACK_BOT_TOKEN", raising=False)
    with pytest.raises(TaskError, match="HUB_SLACK_BOT_TOKEN") as info:
        await SlackPost().run(make_ctx(tmp_path), SlackPostParams(channel="C0OPS", text="x"))
    assert info.value.retryable is False


async def test_text_or_blocks_required(tmp_path: Path) -> None:
    with pytest.raises(TaskError, match="give text, blocks or both"):
        await SlackPost().run(make_ctx(tmp_path), SlackPostParams(channel="C0OPS"))


async def test_loopback_slack_is_blocked_unless_allow_listed(
    slack: FakeSlack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HUB_HTTP_ALLOW_HOSTS")
    with pytest.raises(BlockedAddress, match="loopback"):
        await SlackPost().run(make_ctx(tmp_path), SlackPostParams(channel="C0OPS", text="x"))
    assert slack.calls == []


async def test_rerun_of_a_step_updates_instead_of_posting_twice(
    slack: FakeSlack, tmp_path: Path, store: Store
) -> None:
    ctx = make_ctx(tmp_path, store)
    first = await SlackPost().run(ctx, SlackPostParams(channel="#ops", text="attempt 1"))
    second = await SlackPost().run(ctx, SlackPostParams(channel="#ops", text="attempt 2"))
    assert second["ts"] == first["ts"]
    assert len(slack.posted()) == 1
    assert slack.messages[("C0OPS", first["ts"])]["text"] == "attempt 2"
    other = await SlackPost().run(make_ctx(tmp_path, store, path="other"), SlackPostParams(channel="#ops", text="x"))
    assert other["ts"] != first["ts"]


async def test_reusable_send_functions(slack: FakeSlack) -> None:
    msg = await post_message(channel="C0SALES", text="Approve?", blocks=BLOCKS)
    assert msg["message"]["blocks"] == BLOCKS
    done = await update_message(channel=msg["channel"], ts=msg["ts"], text="Approved", blocks=[])
    assert done["ts"] == msg["ts"]
    with pytest.raises(ConnectorError, match="message_not_found"):
        await update_message(channel="C0SALES", ts="1.2", text="x")


# -- in a flow ------------------------------------------------------------------------------------------

FLOW = """
id: nightly
namespace: ops
tasks:
  - id: fetch
    type: http.request
    url: "http://127.0.0.1:9/report?api_key={{ secret('REPORT_KEY') }}"
errors:
  - id: alert
    type: slack.post
    channel: "#ops"
    token: "{{ secret('SLACK_TOKEN') }}"
    text: "nightly failed: {{ error.message }}"
"""


def test_failed_flow_alerts_slack_with_secrets_masked(
    slack: FakeSlack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hub.testing import run_flow

    monkeypatch.setenv("HUB_SECRET_SLACK_TOKEN", "xoxb-secret")
    monkeypatch.setenv("HUB_SECRET_REPORT_KEY", "rk-987")
    # Slack (the fake) is allowed by name; the report host, 127.0.0.1 by address, is not
    monkeypatch.setenv("HUB_HTTP_ALLOW_HOSTS", "localhost")
    monkeypatch.setenv("HUB_SLACK_BASE_URL", os.environ["HUB_SLACK_BASE_URL"].replace("127.0.0.1", "localhost"))
    result = run_flow(FLOW, home=tmp_path)
    assert result.state == "FAILED"
    assert "127.0.0.1 is a loopback address" in str(result.error)
    [posted] = slack.posted()
    assert slack.calls[-1].token == "xoxb-secret"
    assert posted["text"].startswith("nightly failed: ")
    assert "rk-987" not in posted["text"]
    stored = repr(result.steps)
    assert "rk-987" not in stored and "xoxb-secret" not in stored


async def test_a_flow_posts_with_the_settings_the_engine_was_given(tmp_path: Path) -> None:
    """The process reads its settings once and hands them down: a ``slack.post`` step uses the
    engine's Slack and network sections, not a fresh read of the environment per run."""
    from connectors.slack.settings import SlackSettings
    from hub.net_settings import NetSettings
    from hub.testing import make_engine, run_flow_async

    fake = FakeSlack(tokens={"xoxb-given"}, channels={"C0SALES": "sales"})
    flow = """
id: notify
namespace: test
tasks:
  - {id: post, type: slack.post, channel: "#sales", text: "hello"}
"""
    with serve(fake.app) as url:
        engine = make_engine(home=tmp_path)
        engine.settings.with_sections(
            SlackSettings(base_url=f"{url}/api/", bot_token="xoxb-given"), NetSettings(allow_hosts=["127.0.0.1"])
        )
        for name in ("HUB_SLACK_BASE_URL", "HUB_SLACK_BOT_TOKEN", "HUB_HTTP_ALLOW_HOSTS"):
            assert name not in os.environ
        result = await run_flow_async(flow, engine=engine)
    assert result.state == "SUCCESS", result.execution.get("error")
    assert [(call.method, call.token) for call in fake.calls] == [("chat.postMessage", "xoxb-given")]
