"""Outbound network guard and credential redaction for every HTTP call the hub makes.

Flows choose URLs, so a flow could point ``http.request`` (or a connector's base URL) at the
hub's own neighbours: ``127.0.0.1``, ``10.0.0.0/8``, the cloud metadata endpoint
``169.254.169.254``. :class:`Guard` refuses private, loopback, link-local, multicast and other
non-global addresses unless they are allow-listed (``HUB_HTTP_ALLOW_HOSTS``). The check runs
after DNS resolution and on every hop of a redirect, and the connection is pinned to the address
that was checked, so a name cannot resolve to a public address for the check and to a private
one for the connection.

- httpx: :func:`http_client` builds an ``AsyncClient`` on a :class:`GuardedTransport`.
- aiohttp (slack_sdk): :func:`aiohttp_session` uses a guarded resolver plus a request hook.
- anything else (sendgrid's urllib client): ``await guard.check_url(url)`` before the call.

Redaction: :func:`redact_url` and :func:`redact_headers` mask credentials (passwords in URLs,
API keys in query strings, ``Authorization`` and cookie headers) before anything is logged or
stored; :func:`install_log_redaction` does the same for httpx's own request log lines.
"""

from __future__ import annotations

import asyncio
import fnmatch
import ipaddress
import logging
import re
import socket
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any, TypeGuard
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from hub.core.errors import ConnectorError
from hub.net_settings import NetSettings

MASK = "******"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]


class BlockedAddress(ConnectorError):
    """A destination the guard refuses; not retryable, the message says how to allow it."""

    def __init__(self, message: str):
        super().__init__(message, retryable=False)


# -- addresses ------------------------------------------------------------------------------------


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def why_blocked(ip: IPAddress) -> str | None:
    """Why an address is not a public destination (``None`` when it is)."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            reason = why_blocked(inner)
            return f"{reason} (embedded in {ip})" if reason else None
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global:
        return "not a public address"
    return None


def _parse_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for ``host``."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConnectorError(f"cannot resolve {host!r}: {exc.strerror or exc}") from None
    seen: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in seen:
            seen.append(address)
    return seen


class Guard:
    """Decides which hosts outbound HTTP may reach.

    ``allow`` entries are host names (``localhost``, ``*.corp.example``), addresses
    (``127.0.0.1``) or networks (``10.0.0.0/8``). A name on the list is trusted whatever it
    resolves to; any other name must resolve only to public or allow-listed addresses.
    """

    def __init__(self, allow: Iterable[str] = (), *, allow_all: bool = False, resolver: Resolver | None = None):
        self.allow_all = allow_all
        self.networks: list[Network] = []
        self.names: list[str] = []
        for entry in allow:
            entry = entry.strip()
            if not entry:
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                self.names.append(entry.lower().rstrip("."))
        self.resolver = resolver or system_resolver

    @classmethod
    def from_settings(cls, settings: NetSettings | None = None, resolver: Resolver | None = None) -> Guard:
        settings = settings or NetSettings()
        return cls(settings.allow_hosts, allow_all=settings.allow_all, resolver=resolver)

    def name_allowed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return any(fnmatch.fnmatchcase(host, pattern) for pattern in self.names)

    def address_problem(self, ip: IPAddress) -> str | None:
        if self.allow_all or any(ip in net for net in self.networks if ip.version == net.version):
            return None
        return why_blocked(ip)

    def _blocked(self, target: str, host: str, address: str, reason: str) -> BlockedAddress:
        via = "" if host == address else f" ({host} resolves to {address})"
        return BlockedAddress(
            f"{target} is blocked: {address} is {reason}{via}. Outbound HTTP may not reach private, "
            f"loopback or link-local addresses; to allow it, add {host if host != address else address} "
            "to HUB_HTTP_ALLOW_HOSTS (comma-separated host names, IPs or CIDRs)"
        )

    async def resolve(self, host: str, port: int, target: str | None = None) -> list[str]:
        """The addresses to connect to for ``host``, all checked; raises :class:`BlockedAddress`.

        Returns ``[]`` when the host is trusted by name or the guard is off: connect as usual.
        """
        target = target or host
        if self.allow_all or self.name_allowed(host):
            return []
        literal = _parse_ip(host)
        if literal is not None:
            reason = self.address_problem(literal)
            if reason:
                raise self._blocked(target, host, str(literal), reason)
            return [str(literal)]
        addresses = await self.resolver(host, port)
        if not addresses:
            raise ConnectorError(f"cannot resolve {host!r}: no addresses")
        for address in addresses:
            ip = _parse_ip(address)
            reason = "not an IP address" if ip is None else self.address_problem(ip)
            if reason:
                raise self._blocked(target, host, address, reason)
        return addresses

    async def check_url(self, url: str | httpx.URL) -> list[str]:
        """Check a URL before a client that cannot be guarded itself calls it."""
        parsed = httpx.URL(str(url))
        if parsed.scheme not in ("http", "https"):
            raise BlockedAddress(f"{redact_url(str(url))} is blocked: only http and https URLs may be called")
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        return await self.resolve(parsed.host, port, target=redact_url(str(url)))


# -- httpx ----------------------------------------------------------------------------------------


class GuardedTransport(httpx.AsyncBaseTransport):
    """Checks every request (so every redirect hop) and pins it to the checked address.

    The request goes to the checked IP with the original ``Host`` header and TLS server name, so
    certificates are still verified against the host name.
    """

    def __init__(self, guard: Guard, inner: httpx.AsyncBaseTransport | None = None):
        self.guard = guard
        self.inner = inner or httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise BlockedAddress(f"{redact_url(str(url))} is blocked: only http and https URLs may be called")
        port = url.port or (443 if url.scheme == "https" else 80)
        addresses = await self.guard.resolve(url.host, port, target=redact_url(str(url)))
        if not addresses or _parse_ip(url.host) is not None:
            return await self.inner.handle_async_request(request)
        extensions = dict(request.extensions)
        if url.scheme == "https":
            extensions.setdefault("sni_hostname", url.host)
        pinned = httpx.Request(
            request.method,
            url.copy_with(host=addresses[0]),
            headers=request.headers,
            stream=request.stream,
            extensions=extensions,
        )
        return await self.inner.handle_async_request(pinned)

    async def aclose(self) -> None:
        await self.inner.aclose()


_GUARDED: weakref.WeakSet[httpx.AsyncClient] = weakref.WeakSet()


def http_client(guard: Guard | None = None, **kwargs: Any) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` whose every request passes the guard.

    Environment proxies are ignored (``trust_env=False``): a proxy would connect on our behalf
    and bypass the check. Build the process-wide client with this function.
    """
    install_log_redaction()
    guard = guard or Guard.from_settings()
    inner = kwargs.pop("transport", None)
    kwargs.setdefault("trust_env", False)
    client = httpx.AsyncClient(transport=GuardedTransport(guard, inner), **kwargs)
    _GUARDED.add(client)
    return client


def is_guarded(client: Any) -> TypeGuard[httpx.AsyncClient]:
    """Whether ``client`` was built by :func:`http_client`."""
    try:
        return client in _GUARDED
    except TypeError:
        return False


# -- aiohttp (slack_sdk) --------------------------------------------------------------------------


def aiohttp_session(guard: Guard | None = None, **kwargs: Any) -> Any:
    """An ``aiohttp.ClientSession`` that resolves through the guard and checks literal IPs.

    Create it inside a running event loop and close it when done.
    """
    import aiohttp
    from aiohttp.abc import AbstractResolver

    checked = guard or Guard.from_settings()

    class _GuardedResolver(AbstractResolver):
        async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[Any]:
            addresses = await checked.resolve(host, port)
            if not addresses:
                addresses = await system_resolver(host, port)
            out = []
            for address in addresses:
                ip = ipaddress.ip_address(address)
                out.append({
                    "hostname": host,
                    "host": address,
                    "port": port,
                    "family": socket.AF_INET6 if ip.version == 6 else socket.AF_INET,
                    "proto": 0,
                    "flags": socket.AI_NUMERICHOST,
                })
            return out

        async def close(self) -> None:
            return None

    async def _on_start(_session: Any, _ctx: Any, params: Any) -> None:
        # aiohttp skips the resolver for literal IPs, so check those (and the scheme) here
        url = params.url
        if url.scheme not in ("http", "https") or _parse_ip(url.host or "") is not None:
            await checked.check_url(str(url))

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(_on_start)
    trace.on_request_redirect.append(_on_start)
    connector = aiohttp.TCPConnector(resolver=_GuardedResolver(), use_dns_cache=False)
    kwargs.setdefault("trust_env", False)
    return aiohttp.ClientSession(connector=connector, trace_configs=[trace], **kwargs)


# -- redaction ------------------------------------------------------------------------------------

_SENSITIVE_HEADER = re.compile(
    r"^(authorization|proxy-authorization|cookie|set-cookie)$|auth|token|secret|passw|api[-_]?key|signature|session",
    re.IGNORECASE,
)
_SENSITIVE_QUERY = re.compile(
    r"^(key|sig|pass|pwd|auth)$|token|secret|passw|api[-_]?key|signature|authori[sz]ation|credential|"
    r"access[-_]?key|session",
    re.IGNORECASE,
)


def is_sensitive_header(name: str) -> bool:
    return bool(_SENSITIVE_HEADER.search(name))


def redact_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers with credential values masked (names kept, so a reader sees what was sent)."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {name: (MASK if is_sensitive_header(name) else value) for name, value in items}


def redact_url(url: str) -> str:
    """A URL with its password and credential-looking query values masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{hostport}" if ":" in userinfo else f"{MASK}@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(_SENSITIVE_QUERY.search(k) for k, _ in pairs):
            query = urlencode([(k, MASK if _SENSITIVE_QUERY.search(k) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class _RedactUrls(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                redact_url(str(a)) if isinstance(a, httpx.URL) or (isinstance(a, str) and "://" in a) else a
                for a in record.args
            )
        return True


_LOG_FILTER = _RedactUrls()


def install_log_redaction() -> None:
    """Mask credentials in the URLs httpx logs for every request (idempotent)."""
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        if _LOG_FILTER not in logger.filters:
            logger.addFilter(_LOG_FILTER)


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date), or from
    ``retry-after-ms`` (milliseconds, sent by Azure OpenAI and others), which is more precise."""
    millis = headers.get("retry-after-ms") or headers.get("Retry-After-Ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after") or headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
