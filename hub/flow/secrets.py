"""``secret('NAME')``: values from ``HUB_SECRET_<NAME>`` or the secrets file, and their redaction.

Every secret an execution reads is remembered by its :class:`Redactor`; rendered parameters,
outputs, errors and log lines pass through it before they are stored or printed.

A value made from a secret is not the secret's text (``| upper``, ``| b64encode``, ``[::-1]``,
``[:12]``), so it is remembered too: the whole rendered value of every template that called
``secret()`` (see :meth:`Redactor.add_rendered`, called by the expression engine). The task
still receives the real value; only what is stored, logged or traced is masked.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hub.errors import ExpressionError

MASK = "******"
ENV_PREFIX = "HUB_SECRET_"


def read_secrets_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name.strip()] = value
    return values


class Secrets:
    """Looks secrets up: environment first, then the secrets file (read once)."""

    def __init__(self, file: Path | None = None, environ: dict[str, str] | None = None):
        self.file = file
        self._environ = environ if environ is not None else os.environ
        self._file_values: dict[str, str] | None = None

    def get(self, name: str) -> str:
        value = self._environ.get(ENV_PREFIX + name)
        if value is None:
            if self._file_values is None:
                self._file_values = read_secrets_file(self.file) if self.file else {}
            value = self._file_values.get(name)
        if value is None:
            where = f" or add {name}=... to {self.file}" if self.file else ""
            raise ExpressionError(f"secret {name!r} is not set; set {ENV_PREFIX}{name} in the environment{where}")
        return value


class Redactor:
    """Replaces every secret value seen so far with ``******`` in strings, dicts and lists.

    ``reads`` counts the calls of its ``secret()`` function, so that whoever renders a template
    can tell whether that template read a secret (and then hand its result to :meth:`add_rendered`).
    """

    def __init__(self) -> None:
        self.values: set[str] = set()
        self.reads = 0

    def add(self, value: str) -> None:
        if value and len(value) >= 3:
            self.values.add(value)

    def add_rendered(self, value: Any) -> None:
        """Remember the rendered value of a template that called ``secret()``: each string in it
        is masked whole from now on (numbers and booleans are not: they would mask every equal
        number)."""
        if isinstance(value, str):
            self.add(value)
        elif isinstance(value, dict):
            for item in value.values():
                self.add_rendered(item)
        elif isinstance(value, list | tuple | set):
            for item in value:
                self.add_rendered(item)

    def __call__(self, value: Any) -> Any:
        if not self.values:
            return value
        return self._walk(value)

    def _walk(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in sorted(self.values, key=len, reverse=True):
                if secret in value:
                    value = value.replace(secret, MASK)
            return value
        if isinstance(value, dict):
            return {k: self._walk(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._walk(v) for v in value]
        return value

    def secret_function(self, secrets: Secrets) -> SecretFunction:
        return SecretFunction(secrets, self)


class SecretFunction:
    """``secret('NAME')`` in an execution's expressions: looks the value up and tells the
    redactor. (Its attributes start with ``_``, which the expression sandbox never lets through.)"""

    __slots__ = ("_redactor", "_secrets")

    def __init__(self, secrets: Secrets, redactor: Redactor):
        self._secrets = secrets
        self._redactor = redactor

    def __call__(self, name: str) -> str:
        value = self._secrets.get(str(name))
        self._redactor.add(value)
        self._redactor.reads += 1
        return value


def redactor_of(scope: Any) -> Redactor | None:
    """The redactor behind a scope's ``secret`` function, if it has one."""
    secret = scope.get("secret") if hasattr(scope, "get") else None
    return secret._redactor if isinstance(secret, SecretFunction) else None
