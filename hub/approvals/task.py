"""The ``approval`` task kind: pause until the right people decide.

First run: open the gate (``approval_gates``), notify the channels, pause. The execution is
PAUSED and holds no worker; ``resume_at`` is set to the next thing that must happen by itself
(a reminder, the escalation, the timeout). Every later run of the step reads the gate: decided →
the output; a reminder or escalation due → send it and pause again; past the timeout → apply
``on_timeout``. A decision (Slack, email link, web page, API) resumes the execution.

Output::

    {"decision": "approved" | "rejected" | "timed_out", "approved": bool, "timed_out": bool,
     "decided_by": {"who", "identity", "channel", "at"}, "votes": [{"who", "channel", "vote", ...}],
     "comment": str | None, "form": {field: value} (the latest edit), "revision": int, "gate_id": str}
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, WithJsonSchema, field_validator, model_validator

from hub import approvals
from hub.approvals import notify
from hub.approvals.forms import FormField
from hub.approvals.identities import canonical, expand_groups, split_list
from hub.approvals.service import DECIDED, PENDING, Approvals
from hub.approvals.voting import current_values
from hub.core.tasks import Params, TaskContext
from hub.engine.catalog import FlowCatalog
from hub.errors import Paused, TaskError
from hub.flow.durations import Duration, format_duration
from hub.flow.models import Flow, Task

GROUP_LABEL = "approvers."


# one string ("a@x, b@y") or a list; editors are told both are fine
StrList = Annotated[
    list[str],
    WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}),
]


class ChannelSpec(Params):
    email: StrList | None = Field(None, description="Addresses to email (approvers among them get personal links).")
    slack: StrList | None = Field(None, description="Slack channels (#name or C...) or user IDs (U..., a DM).")

    @field_validator("email", "slack", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return split_list(value) if isinstance(value, str) else value


Channel = Literal["web"] | ChannelSpec


class Escalation(Params):
    channels: list[Channel] = Field(default_factory=list, description="Where the escalation goes.")
    approvers: list[str] = Field(default_factory=list, description="Who may decide from then on, besides the approvers.")


class ApprovalParams(Params):
    message: str = Field(description="What to decide (a template; may show the LLM draft).")
    title: str | None = Field(None, description="A short title; default 'Approve <step> of <flow>'.")
    channels: list[Channel] = Field(
        default_factory=lambda: ["web"],  # type: ignore[arg-type]
        description="web (always), {email: [...]}, {slack: [...]}."
    )
    approvers: list[str] = Field(
        min_length=1, description="Emails, Slack user IDs, key:<api key id or name>, group:<name>."
    )
    required: int = Field(1, ge=1, description="Approvals needed; one rejection rejects.")
    allow_self_approval: bool = Field(False, description="May whoever started the execution approve it?")
    on_timeout: Literal["approve", "reject", "fail"] = Field(
        "reject",
        description="After the step's timeout (how long approvers have): approve, reject (decision "
        "timed_out) or fail the step.",
    )
    remind_every: Duration | None = Field(None, description="Remind approvers who have not decided.")
    escalate_after: Duration | None = Field(None, description="When to escalate (needs 'escalation').")
    escalation: Escalation | None = None
    form: dict[str, FormField] = Field(default_factory=dict, description="Typed fields the approver may edit.")

    @model_validator(mode="after")
    def _consistent(self) -> ApprovalParams:
        if self.escalate_after is not None and self.escalation is None:
            raise ValueError("escalate_after needs escalation: {channels: [...], approvers: [...]}")
        if self.remind_every is not None and self.remind_every < 1:
            raise ValueError("remind_every must be at least 1s")
        return self


def _channels(items: list[Channel]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"kind": "web"}]
    for item in items:
        if isinstance(item, ChannelSpec):
            if item.email:
                out.append({"kind": "email", "to": list(item.email)})
            if item.slack:
                out.append({"kind": "slack", "to": list(item.slack)})
    return out


class Approval:
    """Pause until approvers decide (Slack, email link, web page, API); output the decision."""

    type = "approval"
    Params = ApprovalParams
    pauses = True  # its RUNNING row is written before it runs: it hands out its resume token

    async def run(self, ctx: TaskContext, params: ApprovalParams) -> Any:
        service = approvals.for_context(ctx)
        if ctx.issue_resume_token is not None:
            _ = ctx.resume_token  # a decision ends this step through engine.complete (hub.engine.pauses)
        gate = service.find(ctx.execution_id, ctx.path)
        if gate is not None and (gate["state"] == "cancelled" or (gate["state"] == "timed_out" and gate["on_timeout"] == "fail")):
            service.retire(gate)  # the execution was restarted: ask again
            gate = None
        if gate is None:
            gate = service.open(self._gate_values(service, ctx, params))
            ctx.log(f"approval {gate['id']}: waiting for {', '.join(gate['approvers'])} (needs {gate['required']})")
        if gate["notified_at"] is None and gate["state"] == PENDING:
            await notify.send(service, ctx, gate, "request", gate["channels"])
            service.update(gate["id"], notified_at=service.clock.time())
        return await self._check(service, ctx, service.get(gate["id"]))

    def _gate_values(self, service: Approvals, ctx: TaskContext, params: ApprovalParams) -> dict[str, Any]:
        execution = service.store.get_execution(ctx.execution_id)
        flow = _flow(service, execution)
        groups = {**service.settings.groups, **_label_groups(flow)}
        approvers = expand_groups(params.approvers, groups)
        escalation_approvers = expand_groups(params.escalation.approvers, groups) if params.escalation else []
        if params.required > len(approvers) + len(escalation_approvers):
            raise TaskError(
                f"required is {params.required} but only {len(approvers)} approver(s) are named; "
                "name more approvers or lower required",
                retryable=False,
            )
        # the step's own timeout (a key every task has) is how long approvers have
        task = _find_task([*flow.tasks, *flow.errors, *flow.finally_], ctx.task_id) if flow is not None else None
        timeout = task.timeout if task is not None else None
        now = service.clock.time()
        deadline = now + timeout if timeout is not None else None
        return {
            "execution_id": ctx.execution_id,
            "path": ctx.path,
            "namespace": ctx.namespace,
            "flow_id": ctx.flow_id,
            "task_id": ctx.task_id,
            "title": params.title or f"Approve {ctx.task_id} of {ctx.namespace}.{ctx.flow_id}",
            "message": params.message,
            "form": {name: spec.model_dump(exclude_none=True) for name, spec in params.form.items()},
            "approvers": approvers,
            "escalation_approvers": escalation_approvers,
            "started_by": _started_by(execution),
            "channels": _channels(params.channels),
            "escalation_channels": _channels(params.escalation.channels)[1:] if params.escalation else [],
            "required": params.required,
            "allow_self_approval": params.allow_self_approval,
            "deadline": deadline,
            "on_timeout": params.on_timeout,
            "remind_every": params.remind_every,
            "escalate_after": params.escalate_after,
            "link_expires_at": deadline if deadline is not None else now + service.settings.link_ttl,
        }

    async def _check(self, service: Approvals, ctx: TaskContext, gate: dict[str, Any]) -> Any:
        gate = service.reconcile(gate)
        if gate["state"] == "cancelled":
            raise TaskError(f"approval {gate['id']} was cancelled", retryable=False)
        if gate["state"] in DECIDED:
            return self._decided(service, ctx, gate)
        now = service.clock.time()
        if gate["deadline"] is not None and now >= gate["deadline"]:
            return await self._timed_out(service, ctx, gate)
        if gate["escalate_after"] is not None and gate["escalated_at"] is None \
                and now >= gate["created_at"] + gate["escalate_after"]:
            service.update(gate["id"], escalated_at=now)
            gate = service.get(gate["id"])
            ctx.log(f"approval {gate['id']}: escalated after {format_duration(gate['escalate_after'])}")
            await notify.send(service, ctx, gate, "escalation", gate["escalation_channels"])
            await service.refresh_messages(gate["id"])
        if gate["remind_every"] is not None:
            last = gate["last_reminded_at"] or gate["created_at"]
            if now >= last + gate["remind_every"]:
                count = gate["reminders_sent"] + 1
                service.update(gate["id"], reminders_sent=count, last_reminded_at=now)
                await notify.send(service, ctx, gate, f"reminder-{count}",
                                  gate["channels"] + (gate["escalation_channels"] if gate["escalated_at"] else []))
        gate = service.get(gate["id"])
        if gate["state"] in DECIDED:  # decided while reminders went out
            return self._decided(service, ctx, gate)
        raise Paused(f"waiting for approval {gate['id']}", resume_at=next_wakeup(gate), data={"gate_id": gate["id"]})

    def _decided(self, service: Approvals, ctx: TaskContext, gate: dict[str, Any]) -> Any:
        out = service.outputs(gate)
        who = (gate["decided_by"] or {}).get("who", "")
        ctx.log(f"approval {gate['id']}: {gate['state'].replace('_', ' ')}" + (f" by {who}" if who else ""))
        return out

    async def _timed_out(self, service: Approvals, ctx: TaskContext, gate: dict[str, Any]) -> Any:
        timeout = format_duration(gate["deadline"] - gate["created_at"])
        by = {"who": "timeout", "identity": None, "channel": "timeout", "at": None}
        if gate["on_timeout"] == "approve":
            service.close(gate["id"], "approved", decision="approved", decided_by=by,
                          form_values=current_values(gate),  # the latest edit, else the defaults
                          reason=f"no decision within {timeout}; on_timeout: approve")
        else:
            service.close(gate["id"], "timed_out", decision="timed_out", decided_by=by,
                          reason=f"no decision within {timeout}; on_timeout: {gate['on_timeout']}")
        gate = service.get(gate["id"])
        await service.refresh_messages(gate["id"])
        if gate["state"] not in DECIDED:  # cancelled meanwhile
            raise TaskError(f"approval {gate['id']} was cancelled", retryable=False)
        if gate["on_timeout"] == "fail" and gate["state"] == "timed_out":
            raise TaskError(f"approval {gate['id']} timed out: no decision within {timeout}", retryable=False)
        return self._decided(service, ctx, gate)


def next_wakeup(gate: dict[str, Any]) -> float | None:
    """When the paused step must run again by itself: timeout, escalation or next reminder."""
    times = []
    if gate["deadline"] is not None:
        times.append(gate["deadline"])
    if gate["escalate_after"] is not None and gate["escalated_at"] is None:
        times.append(gate["created_at"] + gate["escalate_after"])
    if gate["remind_every"] is not None:
        times.append((gate["last_reminded_at"] or gate["created_at"]) + gate["remind_every"])
    return min(times) if times else None


def _started_by(execution: dict[str, Any]) -> list[str]:
    """Identities of whoever started the execution (the API records the key; labels may add one)."""
    found: list[str] = []
    for source in (execution.get("trigger") or {}, execution.get("labels") or {}):
        value = source.get("started_by")
        if isinstance(value, str) and value:
            found.append(canonical(value))
    return found


def _flow(service: Approvals, execution: dict[str, Any]) -> Flow | None:
    catalog = service.engine.catalog if service.engine is not None else FlowCatalog(service.store)
    try:
        return catalog.get(execution["namespace"], execution["flow_id"], execution["revision"])[1]
    except Exception:
        return None


def _find_task(tasks: list[Task], task_id: str) -> Task | None:
    for task in tasks:
        if task.id == task_id:
            return task
        for _, kids in task.children():
            found = _find_task(kids, task_id)
            if found is not None:
                return found
    return None


def _label_groups(flow: Flow | None) -> dict[str, list[str]]:
    """Groups from the flow's own labels (``approvers.<group>: "a@x, U1"``), not from the labels a
    starter may add to an execution."""
    labels = flow.labels if flow is not None else {}
    return {k[len(GROUP_LABEL):]: split_list(str(v)) for k, v in labels.items() if k.startswith(GROUP_LABEL)}

