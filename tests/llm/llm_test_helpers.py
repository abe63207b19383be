"""Importable helpers for the LLM tests (validators, output models, runnables)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


def only_low_urgency(value: dict[str, Any]) -> str | None:
    return None if value.get("urgency") == "low" else "urgency must be low in tests"


class Lead(BaseModel):
    score: float = Field(ge=0, le=1)
    segment: Literal["enterprise", "mid_market", "smb", "not_a_fit"]


def make_classifier() -> Any:
    """A factory: returns a small chain (prompt -> fake chat model -> parser)."""
    from langchain_core.language_models.fake_chat_models import FakeListChatModel
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate

    prompt = ChatPromptTemplate.from_messages([("system", "Classify."), ("user", "{text}")])
    return prompt | FakeListChatModel(responses=["billing"]) | StrOutputParser()


def _shout(data: dict[str, Any]) -> dict[str, Any]:
    return {"text": str(data["text"]).upper(), "length": len(str(data["text"]))}


async def _ashout(data: dict[str, Any]) -> dict[str, Any]:
    return {"text": str(data["text"]).upper()}


def _build() -> Any:
    from langchain_core.runnables import RunnableLambda

    return RunnableLambda(_shout, afunc=None)


shout = _build()
ashout = __import__("langchain_core.runnables", fromlist=["RunnableLambda"]).RunnableLambda(_ashout)


def chat_model() -> Any:
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    return FakeListChatModel(responses=["Hello from a chat model"])


def broken() -> Any:
    from langchain_core.runnables import RunnableLambda

    def fail(_: Any) -> Any:
        raise RuntimeError("retriever is down")

    return RunnableLambda(fail)


def failing_model() -> Any:
    """A chat model whose call fails (the error goes through LangChain's callbacks)."""
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    class Down(FakeListChatModel):
        def _call(self, *args: Any, **kwargs: Any) -> str:
            raise RuntimeError("model is down")

    return Down(responses=["never"])
