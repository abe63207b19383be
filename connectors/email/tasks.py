"""The ``email.send`` task kind."""

from __future__ import annotations

from typing import Any

from connectors.email import outbox
from connectors.email.backends import SendGridBackend, SendResult, SmtpBackend
from connectors.email.message import EmailSendParams, build_message
from connectors.email.settings import EmailSettings
from hub.core.errors import TaskError, error_dict
from hub.core.tasks import TaskContext
from hub.net import Guard
from hub.net_settings import NetSettings


class EmailSend:
    """Send an email through SendGrid, SMTP or the outbox (HUB_EMAIL_BACKEND; by default the first
    one configured, and the outbox when none is: the message is stored, never dropped).

    Output: ``{"id", "backend", "status", "message_id", "provider_id", "accepted", "refused",
    "deduplicated"}``; ``id`` names the record in the outbox / delivery list. A re-run of a step
    that already sent returns the first result (``deduplicated: true``) instead of sending again.
    """

    type = "email.send"
    Params = EmailSendParams

    async def run(self, ctx: TaskContext, params: EmailSendParams) -> Any:
        settings = ctx.settings.section(EmailSettings)
        backend = params.backend or settings.resolved_backend()
        message = build_message(params, settings, ctx.idempotency_key)
        if ctx.store is None:
            if backend == "outbox":
                raise TaskError("the email outbox needs the hub's store; none was given", retryable=False)
            record: dict[str, Any] = {
                "id": None, "backend": backend, "message_id": message.message_id, "recipients": message.recipients()
            }
        else:
            record, done = outbox.claim(
                ctx.store,
                idempotency_key=ctx.idempotency_key,
                message=message,
                backend=backend,
                execution_id=ctx.execution_id,
                namespace=ctx.namespace,
                flow_id=ctx.flow_id,
                task_path=ctx.path,
            )
            if done:
                ctx.log(f"email.send: this step already handled message {record['id']} ({record['status']}); not sending again")
                return _output(record, deduplicated=True)
        if backend == "outbox":
            ctx.log(
                f"email.send: no email backend configured, message {record['id']} stored in the outbox "
                "(set HUB_EMAIL_SMTP_HOST or HUB_EMAIL_SENDGRID_API_KEY to send)",
                "warning",
            )
            return _output(record)
        meta = {
            "hub_message_id": record["id"],
            "hub_execution_id": ctx.execution_id,
            "hub_flow": f"{ctx.namespace}.{ctx.flow_id}",
            "hub_step": ctx.path,
            "hub_attempt": str(ctx.attempt),
        }
        try:
            if backend == "sendgrid":
                result: SendResult = await SendGridBackend(settings, Guard.from_settings(ctx.settings.section(NetSettings))).send(message, meta, params.sandbox)
            else:
                result = await SmtpBackend(settings).send(message, meta)
        except Exception as exc:
            if ctx.store is not None and record["id"]:
                outbox.mark_failed(ctx.store, record["id"], error_dict(exc))
            raise
        summary = {"accepted": result.accepted, "refused": result.refused, **result.detail}
        if ctx.store is not None and record["id"]:
            outbox.mark_sent(ctx.store, record["id"], provider_id=result.provider_id, result=summary)
        record.update(status="sent", provider_id=result.provider_id, result=summary, backend=backend)
        ctx.log(f"email.send: sent {message.message_id} via {backend} to {len(result.accepted)} recipient(s)")
        return _output(record)


def _output(record: dict[str, Any], deduplicated: bool = False) -> dict[str, Any]:
    result = record.get("result") or {}
    return {
        "id": record.get("id"),
        "backend": record.get("backend"),
        "status": record.get("status"),
        "message_id": record.get("message_id"),
        "provider_id": record.get("provider_id"),
        "accepted": result.get("accepted", record.get("recipients", [])),
        "refused": result.get("refused", {}),
        "deduplicated": deduplicated,
    }
