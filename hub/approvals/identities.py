"""Who someone is, whatever the channel: ``email:ana@example.com``, ``slack:U024BE7LH``,
``key:ops-bot`` (an API key, by id or name), ``group:finance``, ``user:ana``.

Approvers are written loosely in flows (``ana@example.com``, ``U024BE7LH``, ``group:finance``);
:func:`canonical` gives each its typed form. ``people`` (settings) joins identities of one person,
so that ana approving in Slack and then by email is one vote, not two.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from hub.errors import TaskError

KINDS = ("email", "slack", "key", "group", "user", "person")
_SLACK_USER = re.compile(r"^[UW][A-Z0-9]{4,}$")


def canonical(text: str) -> str:
    """The typed form of an identity as a flow or a setting writes it."""
    value = str(text).strip()
    kind, sep, rest = value.partition(":")
    if sep and kind in KINDS and rest:
        return f"{kind}:{rest.lower() if kind == 'email' else rest}"
    if "@" in value:
        return f"email:{value.lower()}"
    if _SLACK_USER.match(value):
        return f"slack:{value}"
    return f"user:{value}"


def display(identity: str) -> str:
    """How an identity is shown to people."""
    kind, _, value = identity.partition(":")
    return value if kind in ("email", "user", "person") else identity


def expand_groups(entries: Iterable[str], groups: Mapping[str, Iterable[str]]) -> list[str]:
    """Approver entries with every ``group:<name>`` replaced by its members (nested groups too)."""
    out: list[str] = []
    seen_groups: set[str] = set()

    def add(entry: str) -> None:
        ident = canonical(entry)
        if ident.startswith("group:"):
            name = ident[6:]
            if name in seen_groups:
                return
            if name not in groups:
                raise TaskError(
                    f"approver group {name!r} is not defined; define it in HUB_APPROVAL_GROUPS or as the flow "
                    f"label 'approvers.{name}: \"a@example.com, U024BE7LH\"'",
                    retryable=False,
                )
            seen_groups.add(name)
            for member in groups[name]:
                add(member)
        elif ident not in out:
            out.append(ident)

    for entry in entries:
        add(entry)
    return out


class People:
    """Identities that belong to one person (from ``HUB_APPROVAL_PEOPLE``)."""

    def __init__(self, people: Mapping[str, Iterable[str]]):
        self.by_identity: dict[str, str] = {}
        self.aliases: dict[str, set[str]] = {}
        for name, identities in people.items():
            person = f"person:{name}"
            members = {canonical(i) for i in identities} | {person}
            self.aliases[person] = members
            for ident in members:
                self.by_identity[ident] = person

    def expand(self, identities: Iterable[str]) -> set[str]:
        """The identities plus every alias of the people they belong to."""
        out = {canonical(i) for i in identities}
        for ident in list(out):
            person = self.by_identity.get(ident)
            if person:
                out |= self.aliases[person]
        return out

    def voter(self, identity: str) -> str:
        """What one vote is counted against: the person, or the identity itself."""
        ident = canonical(identity)
        return self.by_identity.get(ident, ident)


def split_list(value: str) -> list[str]:
    """``"a@x, U1 b@y"`` → ``["a@x", "U1", "b@y"]`` (flow labels hold groups this way)."""
    return [part for part in re.split(r"[,\s]+", value) if part]
