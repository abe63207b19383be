"""A prompt file: what it says, which variables it takes, what it must answer.

A prompt lives in ``prompts/<name>.yaml``::

    name: support_triage
    description: Classify a support ticket and draft a reply.
    model: fast
    parameters: {temperature: 0}
    variables:
      subject: {description: The ticket subject}
      body: {description: The ticket text}
      customer_tier: {required: false, default: standard}
    messages:
      - role: system
        content: You triage support tickets for ACME.
      - role: user
        content: "Subject: {{ subject }}\\n\\n{{ body }}"
    output:
      schema: {type: object, properties: {...}, required: [...]}     # or  model: pkg.mod:Class
      rules:
        - {field: category, one_of: [billing, bug, account, other]}
    tags: [support]

Message contents are Jinja2 templates (sandboxed, strict undefined) over the declared variables
only. Variable values are data: a ``{{ ... }}`` inside a ticket body stays text.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache
from typing import Any, Literal

from jinja2 import StrictUndefined, TemplateSyntaxError, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hub.flow import yamlpos
from hub.prompts.content import ContentPart, to_openai
from hub.prompts.rules import Rule

NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$"
_NAME = re.compile(NAME_PATTERN)
LATEST = "latest"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Variable(_Strict):
    description: str | None = None
    required: bool = True
    default: Any = None

    @model_validator(mode="after")
    def _default_means_optional(self) -> Variable:
        if self.default is not None:
            self.required = False
        return self


class Message(_Strict):
    """One chat message. ``content`` is text or a list of parts (text, images, files; see
    :mod:`hub.prompts.content`). ``tool_calls`` / ``tool_call_id`` carry a tool-calling exchange
    (an assistant turn that called tools, and a ``tool`` message with one call's result)."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None

    @model_validator(mode="after")
    def _has_something(self) -> Message:
        if self.content is None and not self.tool_calls:
            raise ValueError("a message needs content (or, for an assistant turn, tool_calls)")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs tool_call_id (the id of the call it answers)")
        return self

    def templates(self) -> list[str]:
        """The template strings in the content: the text, and each part's text, url, data, path."""
        if isinstance(self.content, str):
            return [self.content]
        out: list[str] = []
        for part in self.content or []:
            out += [v for k, v in part.model_dump().items() if k in ("text", "url", "data", "path") and isinstance(v, str)]
        return out

    def rendered(self, scope: dict[str, Any] | None) -> dict[str, Any]:
        """The message for the wire: templates filled in from ``scope`` (none when it is None: a
        step's inline messages were rendered by the engine already), parts in OpenAI's shape."""
        if isinstance(self.content, str):
            content: Any = render_template(self.content, scope) if scope is not None else self.content
        elif self.content is None:
            content = None
        else:
            parts = []
            for part in self.content:
                values = part.model_dump(exclude_none=True)
                for key in ("text", "url", "data", "path"):
                    if scope is not None and isinstance(values.get(key), str):
                        values[key] = render_template(values[key], scope)
                parts.append(type(part).model_validate(values))
            content = to_openai(parts)
        out: dict[str, Any] = {"role": self.role, "content": content}
        if self.tool_calls:
            out["tool_calls"] = self.tool_calls
        if self.tool_call_id:
            out["tool_call_id"] = self.tool_call_id
        return out


class OutputSpec(_Strict):
    """What a reply must be: free text (no schema), or JSON checked against a schema."""

    schema_: dict[str, Any] | None = Field(None, alias="schema", description="A JSON Schema.")
    model: str | None = Field(None, description="A pydantic model, 'package.module:Class'.")
    rules: list[Rule] = Field(default_factory=list, description="Checks run after the schema.")
    validator: str | None = Field(
        None, description="A python callable 'package.module:function' taking the value; returns error strings."
    )
    instructions: bool = Field(True, description="Append the schema to the system message.")

    @model_validator(mode="after")
    def _one_schema(self) -> OutputSpec:
        if self.schema_ is not None and self.model is not None:
            raise ValueError("give either 'schema' or 'model', not both")
        return self

    @property
    def is_json(self) -> bool:
        return self.schema_ is not None or self.model is not None


class PromptSpec(_Strict):
    """The content of one prompt file (and of one stored version)."""

    name: str = Field(pattern=NAME_PATTERN)
    description: str | None = None
    model: str | None = Field(None, description="A model alias or a litellm model name.")
    parameters: dict[str, Any] = Field(default_factory=dict, description="temperature, max_tokens, ...")
    variables: dict[str, Variable] = Field(default_factory=dict)
    messages: list[Message] = Field(min_length=1)
    output: OutputSpec | None = None
    tags: list[str] = Field(default_factory=list)

    @field_validator("variables", mode="before")
    @classmethod
    def _names_only(cls, value: Any) -> Any:
        # "variables: [subject, body]" is short for required variables with no description
        if isinstance(value, list):
            return {str(name): {} for name in value}
        return {k: ({} if v is None else v) for k, v in (value or {}).items()}

    @model_validator(mode="after")
    def _templates_use_declared_variables(self) -> PromptSpec:
        used: set[str] = set()
        for i, message in enumerate(self.messages):
            try:
                for template in message.templates():
                    used |= template_names(template)
            except TemplateSyntaxError as exc:
                raise ValueError(f"messages[{i}]: template syntax error: {exc.message}") from None
        undeclared = sorted(used - set(self.variables))
        if undeclared:
            raise ValueError(
                f"messages use undeclared variable(s) {', '.join(undeclared)}; declare them under 'variables'"
            )
        return self

    def canonical(self) -> str:
        """The spec as canonical JSON: what the content hash is taken over."""
        data = self.model_dump(mode="json", by_alias=True)
        for message in data["messages"]:  # keys added later, left out when unset: old hashes hold
            for key in ("tool_calls", "tool_call_id"):
                if message.get(key) is None:
                    message.pop(key, None)
            if isinstance(message.get("content"), list):
                message["content"] = [{k: v for k, v in part.items() if v is not None} for part in message["content"]]
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    def content_hash(self) -> str:
        return hashlib.sha256(self.canonical().encode()).hexdigest()

    def check_vars(self, given: set[str]) -> list[tuple[str | None, str]]:
        """Problems with the variables a step passes, as ``(variable, message)``: each undeclared
        variable by name, then each missing required one (with ``None``)."""
        problems: list[tuple[str | None, str]] = []
        declared = ", ".join(sorted(self.variables)) or "none"
        for name in sorted(given - set(self.variables)):
            problems.append((name, f"prompt {self.name!r} declares no variable {name!r} (declared: {declared})"))
        for name, var in sorted(self.variables.items()):
            if var.required and name not in given:
                problems.append((None, f"prompt {self.name!r} needs variable {name!r}"))
        return problems

    def render(self, values: dict[str, Any]) -> list[dict[str, Any]]:
        """The chat messages with the variables filled in (raises ``ValueError`` on a bad variable)."""
        problems = self.check_vars(set(values))
        if problems:
            raise ValueError("; ".join(message for _, message in problems))
        scope = {name: var.default for name, var in self.variables.items()}
        scope.update(values)
        return [m.rendered(scope) for m in self.messages]


class PromptFileError(ValueError):
    """A prompt file that does not parse or validate; the message says where."""


def parse_prompt(text: str, source: str = "<prompt>") -> PromptSpec:
    try:
        data = yamlpos.load_data(text)
    except yamlpos.YamlSyntaxError as exc:
        raise PromptFileError(exc.where(source)) from None
    if not isinstance(data, dict):
        raise PromptFileError(f"{source}: a prompt file is a mapping with 'name' and 'messages'")
    try:
        return PromptSpec.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "<root>"
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                from hub.flow.loader import suggest

                msg = f"unknown key {err['loc'][-1]!r}{suggest(str(err['loc'][-1]), _keys_at(err['loc'][:-1]))}"
            lines.append(f"  {where}: {msg}")
        raise PromptFileError(f"{source}: invalid prompt:\n" + "\n".join(lines)) from None


def _keys_at(loc: tuple[Any, ...]) -> list[str]:
    model: Any = PromptSpec
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) or next(
            (f for f in model.model_fields.values() if f.alias == part), None
        )
        model = getattr(field, "annotation", None) if field else None
        model = next((a for a in getattr(model, "__args__", ()) if isinstance(a, type) and issubclass(a, BaseModel)), model)
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
    return [f.alias or n for n, f in model.model_fields.items()]


# -- references ------------------------------------------------------------------------------------


class Reference(BaseModel):
    """``name@label``, ``name:version`` or a bare ``name`` (meaning ``name@production``)."""

    model_config = ConfigDict(frozen=True)

    name: str
    label: str | None = None
    version: int | None = None

    def __str__(self) -> str:
        return f"{self.name}:{self.version}" if self.version is not None else f"{self.name}@{self.label}"


DEFAULT_LABEL = "production"


def parse_reference(text: str) -> Reference:
    text = str(text).strip()
    if "@" in text:
        name, _, label = text.partition("@")
        if not label or not _NAME.match(label):
            raise ValueError(f"{text!r}: the label after '@' is empty or not a valid name")
        ref = Reference(name=name, label=label)
    elif ":" in text:
        name, _, version = text.rpartition(":")
        if not version.isdigit() or int(version) < 1:
            raise ValueError(f"{text!r}: the version after ':' must be a number from 1")
        ref = Reference(name=name, version=int(version))
    else:
        ref = Reference(name=text, label=DEFAULT_LABEL)
    if not _NAME.match(ref.name):
        raise ValueError(f"{text!r} is not a prompt reference; write 'name@label' or 'name:version'")
    return ref


# -- templates -------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _env() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
    env.filters["tojson"] = lambda v, indent=None: json.dumps(v, indent=indent, default=str, ensure_ascii=False)
    env.filters["json"] = env.filters["tojson"]
    return env


def template_names(source: str) -> set[str]:
    return set(meta.find_undeclared_variables(_env().parse(source)))


@lru_cache(maxsize=1024)
def _template(source: str) -> Any:
    """The compiled template of ``source``: compiling costs ~1 ms, and a prompt's messages are
    rendered on every call (a template holds no state between renders)."""
    return _env().from_string(source)


def render_template(source: str, scope: dict[str, Any]) -> str:
    return str(_template(source).render(scope))
