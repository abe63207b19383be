"""Signing keys of a hub home: given in a setting, or made once and kept in a file."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import SecretStr


def signing_key(given: SecretStr | None, path: Path) -> bytes:
    """``given`` (a secret setting), or the key in ``path``, created on first use (mode 0600;
    when two processes race, both read the one that was written first)."""
    if given is not None:
        return given.get_secret_value().encode()
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as out:
        out.write(key)
    return key
