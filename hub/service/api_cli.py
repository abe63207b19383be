"""``hub serve``, ``hub deploy`` and ``hub keys``: the API server and what talks to it."""

from __future__ import annotations

import ipaddress
import json
import sys
from pathlib import Path
from typing import Any

import click

from hub.cli import user_errors
from hub.errors import HubError


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _api_store() -> Any:
    from hub.cli import settings
    from hub.store.api_store import ApiStore
    from hub.store.store import Store

    return ApiStore(Store.from_settings(settings()))


log_level_option = click.option(
    "--log-level", default="info", show_default=True,
    type=click.Choice(["debug", "info", "warning", "error", "critical"], case_sensitive=False),
)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--flows", "flows_dir", type=click.Path(path_type=Path), default=None,
              help="Folder of flows deployed at start-up (default HUB_FLOWS_DIR or flows/).")
@log_level_option
@user_errors
def serve(host: str, port: int, flows_dir: Path | None, log_level: str) -> None:
    """Run the API server and the web console at / (and, without HUB_REDIS_URL, the executions in
    this process).

    Every endpoint needs an API key once one exists ('hub keys create'); the console asks for one
    to sign in. Without keys the server runs open, which is allowed only on a loopback address.
    Approval links point at this --port unless HUB_APPROVAL_PUBLIC_URL is set. At start-up every
    HUB_* setting is checked (exit 2 on a bad one), and a prompt label that runs an older version
    than a newer, unlabelled one is named.
    """
    import uvicorn

    from hub.api.app import create_app
    from hub.api.settings import ApiSettings
    from hub.cli import settings as process_settings
    from hub.telemetry.jsonlog import configure_logging

    settings = process_settings()
    configure_logging(log_level, settings.log_format, "server")
    api_settings = settings.section(ApiSettings)
    _links_follow_port(settings, host, port)
    store = _api_store()
    has_keys = store.any_keys() or bool(api_settings.admin_key)
    store.store.close()
    local = is_loopback(host)
    if not has_keys and not local:
        raise HubError(
            f"refusing to serve on {host} without authentication: create a key first with "
            "'hub keys create admin --scope admin' (or set HUB_API_ADMIN_KEY), or bind to 127.0.0.1"
        )
    if not has_keys:
        click.secho(
            f"warning: no API keys exist, so the API on {host}:{port} accepts every request without "
            "authentication (allowed only on loopback). Create one with 'hub keys create NAME --scope admin'.",
            fg="yellow", err=True,
        )
    _prompt_notes(settings)
    folder = flows_dir if flows_dir is not None else settings.flows_dir
    queue = "arq on " + settings.redis_url if settings.redis_url else "in process"
    click.echo(f"hub API on http://{host}:{port}  (state: {settings.resolved_database_url().split('@')[-1]}, "
               f"queue: {queue}, flows: {folder})", err=True)
    app = create_app(flows_dir=folder, auth="auto" if local else "required", hub_settings=settings)
    # in JSON, uvicorn's own lines go through the root logger too (its default config has handlers of its own)
    log_config = None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG
    uvicorn.run(app, host=host, port=port, reload=False, log_level=log_level.lower(), access_log=False,
                log_config=log_config)


def _prompt_notes(settings: Any) -> None:
    """Once, at start-up: every label that runs an older prompt version than a newer unlabelled one."""
    from hub.prompts.startup import label_notes
    from hub.store.store import Store

    store = Store.from_settings(settings)
    try:
        for line in label_notes(store.engine, settings):
            click.secho(f"note: {line}", fg="yellow", err=True)
    finally:
        store.close()


def _links_follow_port(settings: Any, host: str, port: int) -> None:
    """Approval links point at this server when ``HUB_APPROVAL_PUBLIC_URL`` is not set: its
    ``--port``, and its ``--host`` unless that is every address (then 127.0.0.1)."""
    from hub.approvals.settings import ApprovalSettings

    approvals = settings.section(ApprovalSettings)
    if "public_url" not in approvals.model_fields_set:
        shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        shown = f"[{shown}]" if ":" in shown else shown
        approvals.public_url = f"http://{shown}:{port}"


@click.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--url", envvar="HUB_URL", default="http://127.0.0.1:8080", show_default=True,
              help="The server (env HUB_URL).")
@click.option("--key", envvar="HUB_API_KEY", default=None, help="An admin API key (env HUB_API_KEY).")
@user_errors
def deploy(folder: Path, url: str, key: str | None) -> None:
    """Push every flow in FOLDER to a running server; nothing is saved unless all are valid."""
    import httpx

    from hub.flow.loader import flow_files

    files = []
    for path in flow_files(folder):
        try:
            files.append({"file": str(path), "source": path.read_text(encoding="utf-8")})
        except (OSError, UnicodeDecodeError) as exc:
            raise HubError(f"{path}: cannot be read as UTF-8 text: {exc}") from None
    if not files:
        raise HubError(f"no .yaml or .yml flow files in {folder}")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        response = httpx.post(url.rstrip("/") + "/v1/flows/deploy", json={"flows": files}, headers=headers,
                              timeout=60)
    except httpx.HTTPError as exc:
        raise HubError(f"cannot reach {url}: {exc}") from None
    if response.status_code != 200:
        _print_error(response)
        sys.exit(1)
    for flow in response.json()["flows"]:
        change = "new revision" if flow["created"] else "unchanged"
        click.echo(f"{flow['namespace']}.{flow['id']:<40} revision {flow['revision']:<4} {change}")


def _print_error(response: Any) -> None:
    """An API problem (RFC 9457) as lines: its ``detail``, then each location or field."""
    try:
        problem = response.json()
        message, details = problem["detail"], problem.get("details") or []
    except (ValueError, KeyError, TypeError):
        click.secho(f"error: HTTP {response.status_code}: {response.text[:500]}", fg="red", err=True)
        return
    click.secho(f"error: {message}", fg="red", err=True)
    for detail in details:
        where = detail.get("file") or ""
        if detail.get("line"):
            where += f":{detail['line']}:{detail.get('column') or 1}"
        click.secho(f"  {where}: {detail.get('path') or ''}: {detail['message']}", fg="red", err=True)


@click.group()
def keys() -> None:
    """API keys (stored hashed): create, list, revoke."""


def _scopes(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    from hub.store.api_store import valid_scope

    bad = [scope for scope in value if not valid_scope(scope)]
    if bad:
        raise click.BadParameter(f"{', '.join(map(repr, bad))}: give admin, run, approve or read, or run:NAMESPACE "
                                 "or read:NAMESPACE")
    return value


@keys.command("create")
@click.argument("name")
@click.option("--scope", "scopes", multiple=True, required=True, callback=_scopes,
              help="Repeatable: admin, run, approve, read; or run:NAMESPACE, read:NAMESPACE (that namespace "
              "and those under it, e.g. a key for one team's flows in hub mcp).")
@user_errors
def keys_create(name: str, scopes: tuple[str, ...]) -> None:
    """Create a key; its secret is printed once (only a hash is stored)."""
    store = _api_store()
    row, token = store.create_key(name, list(scopes))
    click.echo(token)
    click.echo(f"key {row['id']} ({name}, scopes: {', '.join(row['scopes'])}); keep it now, it is not shown again",
               err=True)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True)
@user_errors
def keys_list(as_json: bool) -> None:
    rows = _api_store().list_keys()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no keys (the server runs open, on loopback only)")
        return
    for row in rows:
        status = "revoked" if row["revoked_at"] else "active"
        click.echo(f"{row['id']:<10} {row['name']:<24} {','.join(row['scopes']):<24} {status}")


@keys.command("revoke")
@click.argument("key_id")
@user_errors
def keys_revoke(key_id: str) -> None:
    row = _api_store().revoke_key(key_id)
    click.echo(f"revoked {row['id']} ({row['name']})")


__all__ = ["serve", "deploy", "keys", "is_loopback"]
