"""The email notifier: a notice sent as one ``email.send`` (SendGrid, SMTP or the outbox), once."""

from __future__ import annotations

import dataclasses

from hub.core.notify import Notice, Receipt
from hub.core.tasks import TaskContext


class EmailNotifier:
    """Sends the notice's subject, text and HTML to an address. The step's path gets ``key``, so
    the outbox's idempotency key is per notice and address and a re-run sends nothing twice."""

    async def send(self, ctx: TaskContext, target: str, notice: Notice, key: str) -> Receipt:
        from connectors.email.message import EmailSendParams
        from connectors.email.settings import EmailSettings
        from connectors.email.tasks import EmailSend

        sender = notice.sender or ctx.settings.section(EmailSettings).from_address or "Hub <hub@hub.local>"
        params = EmailSendParams.model_validate(
            {"to": [target], "from": sender, "subject": notice.subject, "text": notice.text,
             "html": notice.html, "headers": dict(notice.headers)}
        )
        result = await EmailSend().run(dataclasses.replace(ctx, path=f"{ctx.path}~{key}"), params)
        return Receipt(id=result.get("id"))
