"""LLM task kinds: ``llm.chat`` (a versioned prompt, a validated answer, or tool calls) and
``langchain.invoke`` (:mod:`hub.llm.invoke`).

``llm.chat`` output::

    {"value": <the validated JSON, or the text>, "text": <the raw reply>,
     "prompt": {"name", "version", "hash", "reference"} | None, "model": <alias that answered>,
     "usage": {"input_tokens", "output_tokens", "cost", "calls", "latency_ms", "cached_cost"},
     "rounds": 1, "cached": false, "finish_reason": "stop", "tool_calls": []}

``usage.latency_ms`` is the model's time over every round (a round answered from the cache
counts the time it took when it was asked); ``usage.cached_cost`` what the rounds answered from
the cache cost when they were asked (``cost`` is what this step paid).

With ``tools``, a model that calls them answers ``value: null`` and ``tool_calls: [{"id", "name",
"arguments": {...}}]`` (validated against each tool's schema), plus ``message``: the assistant turn
to put back into a conversation. A model that calls tools when the step offered none fails the step.

The reply is data: it is never rendered as a template, and downstream steps read its validated
fields (``outputs.triage.value.category``).
"""

from __future__ import annotations

import time
from typing import Any, Literal

from opentelemetry import trace
from pydantic import Field, model_validator

from hub.core.tasks import Params, TaskContext
from hub.core.tracing import TRACING, lookup
from hub.errors import HubError, NotFound, TaskError, error_dict
from hub.flow.durations import Duration
from hub.flow.expressions import is_template
from hub.llm.budget import check_budget, exceeded, execution_row, max_cost_for
from hub.llm.client import Completion, LLMClient, default_client
from hub.llm.records import CallLog, cache_key
from hub.llm.services import LLM_CLIENT, ONLINE_SCORING, PROMPTS
from hub.llm.settings import LLMSettings, unknown_model
from hub.llm.tools import (
    ToolChoice,
    ToolDef,
    assistant_message,
    check_calls,
    response_format,
    tool_choice_param,
)
from hub.llm.validation import OutputCheck, Rule, repair_message, schema_instructions
from hub.prompts.registry import PromptRegistry, Resolved, prompts_dir, read_spec
from hub.prompts.spec import Message, OutputSpec, PromptFileError, parse_reference


class CacheSpec(Params):
    ttl: Duration | None = Field(None, description="Lifetime of a cached answer (default HUB_LLM_CACHE_TTL).")
    sample: int = Field(1, ge=1, description="Which cached answer to reuse: evals keep one per repeat.")


class ChatParams(Params):
    prompt: str | None = Field(None, description="'name@label', 'name:version', or 'name' (= name@production).")
    messages: list[Message] | None = Field(None, description="Inline messages, instead of a prompt.")
    vars: dict[str, Any] = Field(default_factory=dict, description="Values of the prompt's variables.")
    model: str | None = Field(None, description="Model alias or litellm model; overrides the prompt's.")
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1)
    top_p: float | None = Field(None, ge=0, le=1)
    seed: int | None = None
    stop: list[str] | None = None
    output_schema: dict[str, Any] | None = Field(None, description="JSON Schema of the answer (inline prompts).")
    output_model: str | None = Field(None, description="A pydantic model 'package.module:Class' for the answer.")
    rules: list[Rule] = Field(default_factory=list, description="Extra checks on the answer's fields.")
    validator: str | None = Field(None, description="A python validator 'package.module:function'.")
    max_repairs: int = Field(2, ge=0, le=10, description="Re-asks after an invalid answer.")
    cache: bool | CacheSpec = Field(False, description="Reuse an identical earlier answer (dev and evals).")
    request_timeout: Duration | None = Field(None, description="Seconds per model request.")
    tools: list[ToolDef] | None = Field(None, description="Functions the model may call (JSON Schema arguments).")
    tool_choice: ToolChoice | None = Field(None, description="auto, none, required, or a tool's name.")
    structured_output: Literal["auto", "json_schema", "json_object", "prompt"] = Field(
        "auto",
        description="How the output schema reaches the model: response_format with the schema, JSON mode, "
        "or the system message only; auto: the model alias's setting (json_schema by default).",
    )
    stream: bool = Field(False, description="Stream the answer: tokens reach hub run and the execution's events.")

    @model_validator(mode="after")
    def _prompt_or_messages(self) -> ChatParams:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give either 'prompt' (a stored prompt) or 'messages' (inline)")
        if self.tools is not None:
            names = [tool.function.name for tool in self.tools]
            twice = sorted({name for name in names if names.count(name) > 1})
            if twice:
                raise ValueError(f"tool names must be unique: {', '.join(twice)}")
            tool_choice_param(self.tool_choice, set(names))
        elif self.tool_choice not in (None, "none"):
            raise ValueError("tool_choice needs tools")
        return self


class UnexpectedToolCalls(TaskError):
    """The model answered by calling tools the step did not offer: an error, never an empty answer."""

    def __init__(self, message: str, calls: list[dict[str, Any]]):
        super().__init__(message, retryable=False, data={"tool_calls": calls})


class OutputInvalid(TaskError):
    """The model's answer failed validation after every repair round."""

    def __init__(self, message: str, attempts: list[dict[str, Any]]):
        super().__init__(message, retryable=False, data={"attempts": attempts})


class Chat:
    """Ask a model with a versioned prompt and return its validated answer.

    Invalid JSON or a schema/rule violation is re-asked with the errors appended, up to
    ``max_repairs`` times; every round is stored in ``llm_calls``. A flow's ``max_cost`` stops
    the execution once its LLM spend reaches it.
    """

    type = "llm.chat"
    Params = ChatParams

    @staticmethod
    def check(params: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
        """Flow-load checks: the prompt exists and the step passes exactly its variables."""
        problems: list[tuple[tuple[Any, ...], str]] = []
        schema = params.get("output_schema")
        if isinstance(schema, dict):
            try:
                OutputCheck.build(schema=schema)
            except Exception as exc:
                problems.append((("output_schema",), f"not a valid JSON Schema: {exc}"))
        model = params.get("model")
        if isinstance(model, str) and not is_template(model):
            problem = unknown_model(model)
            if problem:
                problems.append((("model",), problem))
        prompt = params.get("prompt")
        if not isinstance(prompt, str) or is_template(prompt):
            return problems
        try:
            ref = parse_reference(prompt)
        except ValueError as exc:
            return [*problems, (("prompt",), str(exc))]
        directory = prompts_dir()
        if not directory.is_dir():
            return problems  # no prompt files here (a worker fed from the store): checked when it runs
        try:
            found = read_spec(directory, ref.name)
        except PromptFileError as exc:
            return [*problems, (("prompt",), f"prompt {ref.name!r} does not load: {exc}")]
        if found is None:
            from hub.flow.loader import suggest
            from hub.prompts.registry import prompt_files

            names = [p.stem for p in prompt_files(directory)]
            return [*problems, (("prompt",), f"there is no prompt {ref.name!r} in {directory}/{suggest(ref.name, names)}")]
        spec, _ = found
        if spec.model and not isinstance(model, str):
            problem = unknown_model(spec.model)
            if problem:
                problems.append((("prompt",), f"prompt {ref.name!r}: {problem}"))
        given = params.get("vars", {})
        if isinstance(given, dict):
            for name, message in spec.check_vars(set(given)):
                problems.append((("vars", name) if name else ("vars",), message))
        return problems

    async def run(self, ctx: TaskContext, params: ChatParams) -> Any:
        client = ctx.service(LLM_CLIENT) or default_client(ctx.settings.section(LLMSettings))
        store = ctx.store
        log = CallLog.for_store(store) if store is not None else None
        execution = execution_row(ctx)
        resolved = self._resolve(ctx, params, execution)
        if resolved is not None:
            spec = resolved.spec
            try:
                messages = spec.render(params.vars)
            except ValueError as exc:
                raise TaskError(f"prompt {resolved.reference}: {exc}", retryable=False) from None
            contract = _contract(params, spec.output)
            model = params.model or spec.model or client.default_model
            call_params = dict(spec.parameters)
        else:
            try:
                messages = [m.rendered(None) for m in params.messages or []]
            except ValueError as exc:
                raise TaskError(f"messages: {exc}", retryable=False) from None
            contract = _contract(params, None)
            model = params.model or client.default_model
            call_params = {}
        if not model:
            raise TaskError(
                "no model: set 'model' on the step or the prompt, or HUB_LLM_DEFAULT_MODEL / 'default' in the models file",
                retryable=False,
            )
        for key in ("temperature", "max_tokens", "top_p", "seed", "stop"):
            if getattr(params, key) is not None:
                call_params[key] = getattr(params, key)
        check, instructions = contract
        if instructions:
            messages = _with_instructions(messages, instructions)
        call_params.update(_wire_params(client, model, params, check))
        conversation = _Conversation(ctx, client, log, execution, resolved, model, call_params, check, params)
        out = await conversation.run(messages)
        scoring = ctx.service(ONLINE_SCORING)
        if scoring is not None and resolved is not None:
            try:  # sampled and scored later, off this step: it never slows or fails it
                scoring.offer(ctx, resolved, params.vars, out, conversation.call_id)
            except Exception:
                ctx.logger.exception("online scoring could not take the call")
        return out

    @staticmethod
    def _resolve(ctx: TaskContext, params: ChatParams, execution: dict[str, Any] | None) -> Resolved | None:
        if params.prompt is None:
            return None
        if ctx.store is None:
            raise TaskError("llm.chat with a stored prompt needs the hub store", retryable=False)
        registry = ctx.service(PROMPTS) or PromptRegistry(ctx.store.engine, ctx.settings.prompts_dir)
        as_of = execution["created_at"] if execution else None
        try:
            return registry.resolve_for_step(params.prompt, ctx.execution_id, ctx.path, as_of=as_of)
        except (NotFound, PromptFileError, ValueError) as exc:
            raise TaskError(str(exc), retryable=False) from None


def _contract(params: ChatParams, prompt: OutputSpec | None) -> tuple[OutputCheck, str | None]:
    """The answer's checks (the step's settings over the prompt's, rules added to its rules) and
    the schema instructions for the system message (None when there are none to give)."""
    try:
        check = OutputCheck.build(
            schema=params.output_schema or (prompt.schema_ if prompt else None),
            model=params.output_model or (prompt.model if prompt else None),
            rules=[*(prompt.rules if prompt else []), *params.rules],
            validator=params.validator or (prompt.validator if prompt else None),
        )
    except Exception as exc:
        raise TaskError(f"the output contract does not load: {exc}", retryable=False) from None
    json_schema = check.json_schema()
    instructions = prompt.instructions if prompt else True
    return check, schema_instructions(json_schema) if instructions and json_schema else None


def _wire_params(client: LLMClient, model: str, params: ChatParams, check: OutputCheck) -> dict[str, Any]:
    """``tools``, ``tool_choice`` and ``response_format`` as the provider takes them."""
    out: dict[str, Any] = {}
    if params.tools:
        out["tools"] = [tool.openai() for tool in params.tools]
        if params.tool_choice is not None:
            out["tool_choice"] = tool_choice_param(params.tool_choice, {t.function.name for t in params.tools})
    schema = check.json_schema()
    if schema is not None:
        mode = params.structured_output
        if mode == "auto":
            mode = client.spec(model).structured_output
        found = response_format(schema, mode)
        if found is not None:
            out["response_format"] = found
    return out


def _with_instructions(messages: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    out = [dict(m) for m in messages]
    for message in out:
        if message["role"] == "system" and isinstance(message["content"], str):
            message["content"] = f"{message['content'].rstrip()}\n\n{text}"
            return out
    return [{"role": "system", "content": text}, *out]


class _Conversation:
    """One step attempt: ask, validate, re-ask with the errors; record every round."""

    def __init__(
        self, ctx: TaskContext, client: LLMClient, log: CallLog | None, execution: dict[str, Any] | None,
        resolved: Resolved | None, model: str, call_params: dict[str, Any], check: OutputCheck, params: ChatParams,
    ):
        self.ctx, self.client, self.log, self.resolved = ctx, client, log, resolved
        self.model, self.call_params, self.check, self.params = model, call_params, check, params
        self.max_cost = max_cost_for(ctx, execution) if log is not None else None
        self.usage: dict[str, Any] = {
            "input_tokens": 0, "output_tokens": 0, "cost": 0.0, "calls": 0, "latency_ms": 0.0, "cached_cost": 0.0,
        }
        self._hit: dict[str, Any] = {}
        self.call_id: int | None = None  # the record of the last round
        self.tools = {tool.function.name: tool for tool in params.tools or []}
        self.on_token = self._token if params.stream else None
        self._parsed_calls: list[dict[str, Any]] = []
        self._trace_id: str | None = None

    def _token(self, piece: str) -> None:
        self.ctx.emit({"event": "token", "text": piece})

    async def run(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        attempts: list[dict[str, Any]] = []
        for round_no in range(1, self.params.max_repairs + 2):
            reserved = await self._reserve(messages, round_no)
            prompt = self.resolved
            with lookup(TRACING).model_call(
                model=self.model, prompt_name=prompt.name if prompt else None,
                prompt_version=prompt.version if prompt else None, prompt_hash=prompt.content_hash if prompt else None,
                messages=messages, redact=self.ctx.redact,
            ) as span:
                self._trace_id = _trace_id()
                completion, cached = await self._ask(messages, round_no, reserved)
                span.record_response(
                    response_model=completion.litellm_model, provider=completion.provider,
                    input_tokens=0 if cached else completion.input_tokens,
                    output_tokens=0 if cached else completion.output_tokens,
                    finish_reasons=[completion.finish_reason] if completion.finish_reason else None,
                    cost=completion.cost, repair_attempts=round_no - 1, cached=cached,
                    output=completion.text or completion.tool_calls,
                )
            if completion.tool_calls:
                value, errors = self._calls(completion, round_no, messages, cached, reserved)
            else:
                value, errors = self.check.check(completion.text)
                if not errors and self.params.tool_choice not in (None, "auto", "none"):
                    errors = ["call one of the tools, as asked, instead of answering with text"]
            self._record(round_no, messages, completion, cached, "invalid" if errors else "ok", errors, reserved)
            self._budget_after()
            if not errors:
                if self.params.cache and not cached:
                    self._cache_put(messages, completion)
                return self._output(value, completion, round_no, cached)
            attempts.append({"round": round_no, "raw": completion.text, "errors": errors,
                             **({"tool_calls": completion.tool_calls} if completion.tool_calls else {})})
            self.ctx.log(f"llm.chat round {round_no}: answer rejected: {'; '.join(errors)[:300]}", "warning")
            messages = [*messages, *self._repair(completion, errors)]
        raise OutputInvalid(
            f"the model's answer is still invalid after {len(attempts)} attempt(s): {'; '.join(attempts[-1]['errors'])}",
            attempts,
        )

    def _calls(
        self, completion: Completion, round_no: int, messages: list[dict[str, Any]], cached: bool, reserved: int | None
    ) -> tuple[Any, list[str]]:
        """The answer's tool calls, parsed and checked against the declared tools."""
        if not self.tools:
            names = ", ".join(call["name"] for call in completion.tool_calls)
            error = UnexpectedToolCalls(
                f"model {completion.model!r} answered by calling tool(s) {names}, but this step offers no tools; "
                "declare them under 'tools' (or use llm.agent), or remove 'tools' from the model alias's params",
                completion.tool_calls,
            )
            self._record(round_no, messages, completion, cached, "error", [error_dict(error)], reserved)
            raise error
        calls, problems = check_calls(completion.tool_calls, self.tools)
        self._parsed_calls = calls
        errors = [f"tool call {call['name']} ({call['id']}): {problem}"
                  for call in calls for problem in problems.get(call["id"], [])]
        return None, errors

    def _repair(self, completion: Completion, errors: list[str]) -> list[dict[str, Any]]:
        """The turns that send the problems back: the answer, then the list of problems (as a
        ``tool`` message per call when the answer called tools, as the protocol wants)."""
        if not completion.tool_calls:
            return [{"role": "assistant", "content": completion.text}, {"role": "user", "content": repair_message(errors)}]
        out = [assistant_message(completion.text, completion.tool_calls)]
        for call in completion.tool_calls:
            mine = [e for e in errors if f"({call['id']})" in e]
            out.append({"role": "tool", "tool_call_id": call["id"],
                        "content": repair_message(mine) if mine else "not run: another call of this turn was invalid"})
        return out

    def _output(self, value: Any, completion: Completion, round_no: int, cached: bool) -> dict[str, Any]:
        out = {
            "value": value,
            "text": completion.text,
            "prompt": self.resolved.record() if self.resolved else None,
            "model": completion.model,
            "usage": self.usage,
            "rounds": round_no,
            "cached": cached,
            "finish_reason": completion.finish_reason,
            "tool_calls": [],
        }
        if completion.tool_calls:
            out["tool_calls"] = self._parsed_calls
            out["message"] = assistant_message(completion.text, completion.tool_calls)
        return out

    async def _reserve(self, messages: list[dict[str, Any]], round_no: int) -> int | None:
        """With a budget: reserve this call's estimated cost, or fail when the budget is spent."""
        if self.log is None or self.max_cost is None:
            return None
        estimate = await self.client.estimate(self.model, messages, self.call_params)
        row = self.log.reserve(self._identity(round_no), estimate, self.max_cost)
        if row is None:
            raise exceeded(self.log.spent(self.ctx.execution_id), self.max_cost, self.ctx.flow_id)
        return row

    async def _ask(self, messages: list[dict[str, Any]], round_no: int, reserved: int | None) -> tuple[Completion, bool]:
        if self.params.cache and self.log is not None:
            hit = self.log.cache_get(self._cache_key(messages))
            if hit is not None:
                self._hit = hit
                if self.on_token is not None and hit.get("text"):
                    self.on_token(hit["text"])
                return Completion(**{**hit, "cost": 0.0, "latency_ms": 0.0, "retries": 0}), True
        try:
            completion = await self.client.complete(
                self.model, messages, self.call_params, timeout=self.params.request_timeout, on_token=self.on_token
            )
        except HubError as exc:
            self._record(round_no, messages, None, False, "error", [error_dict(exc)], reserved)
            raise
        return completion, False

    def _cache_key(self, messages: list[dict[str, Any]]) -> str:
        spec = self.params.cache
        sample = spec.sample if isinstance(spec, CacheSpec) else 1
        return cache_key(self.model, messages, self.call_params if sample == 1 else {**self.call_params, "#sample": sample})

    def _cache_put(self, messages: list[dict[str, Any]], completion: Completion) -> None:
        assert self.log is not None
        spec = self.params.cache
        ttl = spec.ttl if isinstance(spec, CacheSpec) and spec.ttl else self.client.settings.cache_ttl
        data = completion.to_dict()
        self.log.cache_put(self._cache_key(messages), self.model, data, ttl)

    def _budget_after(self) -> None:
        if self.log is not None and self.max_cost is not None:
            check_budget(self.log.spent(self.ctx.execution_id), self.max_cost, self.ctx.flow_id, before=False)

    def _identity(self, round_no: int) -> dict[str, Any]:
        prompt = self.resolved
        return dict(
            execution_id=self.ctx.execution_id,
            path=self.ctx.path,
            task_id=self.ctx.task_id,
            attempt=self.ctx.attempt,
            round=round_no,
            prompt_name=prompt.name if prompt else None,
            prompt_version=prompt.version if prompt else None,
            prompt_hash=prompt.content_hash if prompt else None,
            model_requested=self.model,
        )

    def _record(
        self, round_no: int, messages: list[dict[str, Any]], completion: Completion | None, cached: bool,
        status: str, errors: list[Any], reserved: int | None = None,
    ) -> None:
        if completion is not None:
            self.usage["input_tokens"] += 0 if cached else completion.input_tokens
            self.usage["output_tokens"] += 0 if cached else completion.output_tokens
            self.usage["cost"] += completion.cost
            self.usage["calls"] += 0 if cached else 1
            self.usage["latency_ms"] += float(self._hit.get("latency_ms") or 0.0) if cached else completion.latency_ms
            self.usage["cached_cost"] += float(self._hit.get("cost") or 0.0) if cached else 0.0
        if self.log is None:
            return
        values: dict[str, Any] = dict(
            status=status,
            cached=cached,
            request=self.ctx.redact({"messages": messages, "params": self.call_params}),
            errors=errors or None,
            trace_id=_trace_id() or self._trace_id,
            cost=0.0,
        )
        if completion is not None:
            values.update(
                model=completion.model,
                litellm_model=completion.litellm_model,
                provider=completion.provider,
                fallback_used=completion.fallback_used,
                retries=completion.retries,
                input_tokens=0 if cached else completion.input_tokens,
                output_tokens=0 if cached else completion.output_tokens,
                cost=completion.cost,
                latency_ms=completion.latency_ms,
                response=self.ctx.redact(completion.text or _calls_text(completion.tool_calls)),
            )
        if reserved is not None:
            self.log.finish(reserved, **values)
            self.call_id = reserved
        else:
            self.call_id = self.log.record(**self._identity(round_no), **values, created_at=time.time())


def _trace_id() -> str | None:
    """The current trace's id (hex), when tracing is on."""
    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None


def _calls_text(calls: list[dict[str, Any]]) -> str | None:
    """Tool calls as the record's response text (``name(arguments)`` per line)."""
    return "\n".join(f"{call['name']}({call['arguments']})" for call in calls) or None
