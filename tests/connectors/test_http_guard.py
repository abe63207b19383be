"""http.request behind the network guard: blocked by default, allow-listed explicitly, checked on
every redirect and after DNS resolution, credentials masked in outputs, errors and logs."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from hub.errors import ConnectorError
from hub.net import BlockedAddress, Guard, http_client, redact_headers, redact_url, why_blocked
from hub.settings import HubSettings
from hub.tasks.base import TaskContext
from hub.tasks.http import HttpParams, HttpRequest
from tests.fakes.server import serve

pytestmark = pytest.mark.anyio

HITS: list[str] = []


async def echo(request: Request) -> Response:
    HITS.append(request.url.path)
    return JSONResponse(
        {"host": request.headers.get("host"), "auth": request.headers.get("authorization")},
        headers={"Set-Cookie": "session=abc123", "X-Plain": "visible"},
    )


async def redirect(request: Request) -> Response:
    HITS.append(request.url.path)
    return RedirectResponse(request.query_params["to"], status_code=302)


async def fail(request: Request) -> Response:
    return PlainTextResponse("boom", status_code=503, headers={"Retry-After": "7"})


async def big(request: Request) -> Response:
    return PlainTextResponse("x" * 5000)


APP = Starlette(
    routes=[
        Route("/echo", echo),
        Route("/redirect", redirect),
        Route("/fail", fail),
        Route("/big", big),
    ]
)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with serve(APP) as base_url:
        yield base_url


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    HITS.clear()
    monkeypatch.delenv("HUB_HTTP_ALLOW_HOSTS", raising=False)
    monkeypatch.delenv("HUB_HTTP_ALLOW_ALL", raising=False)


def make_ctx(tmp_path: Path, **services: object) -> TaskContext:
    return TaskContext(
        execution_id="e1",
        namespace="test",
        flow_id="f",
        task_id="call",
        path="call",
        attempt=1,
        settings=HubSettings(home=tmp_path),
        services=dict(services),
    )


async def run(ctx: TaskContext, **params: object) -> dict:
    return await HttpRequest().run(ctx, HttpParams.model_validate(params))


async def test_loopback_is_blocked_by_default(server: str, tmp_path: Path) -> None:
    with pytest.raises(BlockedAddress) as info:
        await run(make_ctx(tmp_path), url=f"{server}/echo")
    assert "127.0.0.1 is a loopback address" in str(info.value)
    assert "HUB_HTTP_ALLOW_HOSTS" in str(info.value)
    assert info.value.retryable is False
    assert HITS == []


async def test_allow_list_lets_loopback_through(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUB_HTTP_ALLOW_HOSTS", "10.0.0.0/8, 127.0.0.1")
    out = await run(make_ctx(tmp_path), url=f"{server}/echo")
    assert out["status"] == 200
    assert out["body"]["host"] == server.removeprefix("http://")
    assert HITS == ["/echo"]


async def test_localhost_name_is_blocked_after_resolution(server: str, tmp_path: Path) -> None:
    port = server.rsplit(":", 1)[1]
    with pytest.raises(BlockedAddress) as info:
        await run(make_ctx(tmp_path), url=f"http://localhost:{port}/echo")
    assert "localhost resolves to" in str(info.value)
    assert HITS == []


async def test_name_resolving_to_private_address_is_blocked(tmp_path: Path) -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return {"intranet.example.com": ["93.184.216.34", "10.1.2.3"]}[host]

    client = http_client(Guard(resolver=resolver))
    async with client:
        with pytest.raises(BlockedAddress) as info:
            await run(make_ctx(tmp_path, http_client=client), url="http://intranet.example.com/")
    assert "10.1.2.3 is a private address (intranet.example.com resolves to 10.1.2.3)" in str(info.value)


async def test_connection_is_pinned_to_the_checked_address(server: str, tmp_path: Path) -> None:
    """A name is resolved once, checked, and the connection goes to that address with the
    original Host header (no second lookup that could answer differently)."""
    lookups: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    port = server.rsplit(":", 1)[1]
    async with http_client(Guard(["127.0.0.1"], resolver=resolver)) as client:
        out = await run(make_ctx(tmp_path, http_client=client), url=f"http://api.example.test:{port}/echo")
    assert out["body"]["host"] == f"api.example.test:{port}"
    assert lookups == ["api.example.test"]


async def test_redirect_to_a_private_address_is_blocked(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUB_HTTP_ALLOW_HOSTS", "127.0.0.1")
    target = "http://169.254.169.254/latest/meta-data/"
    with pytest.raises(BlockedAddress) as info:
        await run(make_ctx(tmp_path), url=f"{server}/redirect", query={"to": target})
    assert "169.254.169.254 is a link-local address" in str(info.value)
    assert HITS == ["/redirect"]


async def test_redirect_within_the_allow_list_is_followed(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUB_HTTP_ALLOW_HOSTS", "127.0.0.1")
    out = await run(make_ctx(tmp_path), url=f"{server}/redirect", query={"to": f"{server}/echo"})
    assert out["status"] == 200
    assert HITS == ["/redirect", "/echo"]


async def test_unguarded_shared_client_is_not_used(
    server: str, tmp_path: Path
) -> None:
    async with httpx.AsyncClient() as plain:
        with pytest.raises(BlockedAddress):
            await run(make_ctx(tmp_path, http_client=plain), url=f"{server}/echo")
    assert HITS == []


async def test_credentials_are_masked_in_outputs_and_errors(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("HUB_HTTP_ALLOW_HOSTS", "127.0.0.1")
    caplog.set_level(logging.INFO)
    out = await run(
        make_ctx(tmp_path),
        url=f"{server}/echo?api_key=sk-live-123&page=2",
        bearer_auth={"token": "tok-456"},
    )
    assert out["body"]["auth"] == "Bearer tok-456"  # the server got the credential
    assert out["headers"]["set-cookie"] == "******"
    assert out["headers"]["x-plain"] == "visible"
    assert "sk-live-123" not in out["url"] and "page=2" in out["url"]
    assert "sk-live-123" not in caplog.text
    assert "127.0.0.1" in caplog.text  # httpx's request line is still logged, masked

    with pytest.raises(ConnectorError) as info:
        await run(make_ctx(tmp_path), url=f"http://user:hunter2@{server.removeprefix('http://')}/fail?token=t0k")
    error = info.value
    assert error.status == 503 and error.retryable and error.retry_after == 7
    assert "hunter2" not in str(error) and "t0k" not in str(error)
    assert "user:******@" in str(error)


async def test_response_size_is_capped(server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUB_HTTP_ALLOW_HOSTS", "127.0.0.1")
    monkeypatch.setenv("HUB_HTTP_MAX_RESPONSE_BYTES", "1000")
    with pytest.raises(ConnectorError, match="larger than 1000 bytes"):
        await run(make_ctx(tmp_path), url=f"{server}/big")


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.5", "private"),
        ("172.16.3.4", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("fd00::1", "private"),
        ("0.0.0.0", "unspecified"),
        ("100.64.0.1", "not a public"),
        ("224.0.0.1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),
        ("64:ff9b::a00:1", "private"),
        ("2002:c0a8:101::1", "private"),
        ("8.8.8.8", None),
        ("2606:4700::1111", None),
    ],
)
def test_address_classes(address: str, reason: str | None) -> None:
    found = why_blocked(ipaddress.ip_address(address))
    if reason is None:
        assert found is None
    else:
        assert found is not None and reason in found


async def test_guard_allow_list_forms() -> None:
    async def resolver(host: str, port: int) -> list[str]:
        return ["10.9.8.7"]

    guard = Guard(["*.corp.example", "192.168.0.0/16", "::1"], resolver=resolver)
    assert await guard.resolve("git.corp.example", 443) == []  # trusted by name
    assert await guard.resolve("192.168.4.4", 80) == ["192.168.4.4"]
    assert await guard.resolve("::1", 80) == ["::1"]
    with pytest.raises(BlockedAddress):
        await guard.resolve("corp.example.evil.test", 443)
    with pytest.raises(BlockedAddress, match="only http and https"):
        await guard.check_url("ftp://192.168.4.4/file")


def test_redaction_helpers() -> None:
    assert redact_url("https://bob:pw@api.example.com/x?apikey=1&q=ok&access_token=2") == (
        "https://bob:******@api.example.com/x?apikey=******&q=ok&access_token=******"
    )
    assert redact_url("https://api.example.com/x?author=me") == "https://api.example.com/x?author=me"
    assert redact_headers({"Authorization": "Basic x", "X-Api-Key": "k", "Accept": "a/b"}) == {
        "Authorization": "******",
        "X-Api-Key": "******",
        "Accept": "a/b",
    }


async def test_the_shipped_http_retry_flow_lists_the_keys_it_fetched(
    server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hub.flow.loader import load_file
    from hub.testing import make_engine

    monkeypatch.setenv("HUB_HTTP_ALLOW_HOSTS", "127.0.0.1")
    engine = make_engine(home=tmp_path)
    flow = load_file(Path(__file__).parents[2] / "flows" / "http_retry.yaml")
    done = await engine.execute(flow, {"url": f"{server}/echo"})
    assert done["state"] == "SUCCESS", done["error"]
    assert done["outputs"] == {"status": 200, "keys": ["host", "auth"]}
