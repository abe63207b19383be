"""Content parts of a message: text, images and files, for models that accept them.

A message's ``content`` is a string or a list of parts. In a flow or a prompt file::

    content:
      - {type: text, text: "What is on this receipt?"}
      - {type: image, url: "https://example.com/receipt.png", detail: low}
      - {type: image, data: "{{ outputs.scan.base64 }}", media_type: image/png}
      - {type: image, path: "{{ trigger.path }}"}              # a file the process can read
      - {type: file, path: contracts/nda.pdf}                 # a PDF, for models that read files
      - {type: image_url, image_url: {url: "data:image/png;base64,..."}}   # OpenAI's own shape

They are sent in OpenAI's shape (``image_url`` with a URL or a ``data:`` URL, ``file`` with
``file_data``); litellm maps that shape to other providers.
"""

from __future__ import annotations

import base64
import mimetypes
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_FILE_BYTES = 20 * 1024 * 1024  # what OpenAI accepts per image; larger is almost surely a mistake


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextPart(_Part):
    type: Literal["text"]
    text: str


class _Source(_Part):
    url: str | None = Field(None, description="An http(s) URL or a data: URL.")
    data: str | None = Field(None, description="The bytes, base64-encoded (with media_type).")
    path: str | None = Field(None, description="A file this process can read.")
    media_type: str | None = Field(None, description="image/png, application/pdf, ... (guessed from a path).")

    @model_validator(mode="after")
    def _one_source(self) -> _Source:
        given = [name for name in ("url", "data", "path") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError(f"give exactly one of url, data or path (got {', '.join(given) or 'none'})")
        if self.data and not self.media_type:
            raise ValueError("data needs media_type (e.g. image/png)")
        return self

    def data_url(self) -> str:
        """The source as a URL: as given, or a ``data:`` URL of the bytes."""
        if self.url:
            return self.url
        if self.data:
            return f"data:{self.media_type};base64,{self.data.strip()}"
        assert self.path is not None
        path = Path(self.path).expanduser()
        try:
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                raise ValueError(f"{self.path}: {size} bytes, more than the {MAX_FILE_BYTES} a content part may carry")
            raw = path.read_bytes()
        except OSError as exc:
            raise ValueError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        media = self.media_type or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return f"data:{media};base64,{base64.b64encode(raw).decode()}"


class ImagePart(_Source):
    type: Literal["image"]
    detail: Literal["auto", "low", "high"] | None = None

    def openai(self) -> dict[str, Any]:
        image: dict[str, Any] = {"url": self.data_url()}
        if self.detail:
            image["detail"] = self.detail
        return {"type": "image_url", "image_url": image}


class FilePart(_Source):
    type: Literal["file"]
    filename: str | None = None

    def openai(self) -> dict[str, Any]:
        name = self.filename or (Path(self.path).name if self.path else "file")
        return {"type": "file", "file": {"file_data": self.data_url(), "filename": name}}


class ImageURL(_Part):
    url: str
    detail: Literal["auto", "low", "high"] | None = None


class ImageURLPart(_Part):
    """OpenAI's own shape, passed through."""

    type: Literal["image_url"]
    image_url: ImageURL


ContentPart = Annotated[TextPart | ImagePart | FilePart | ImageURLPart, Field(discriminator="type")]


def to_openai(content: str | list[Any] | None) -> Any:
    """A message's content as the wire format wants it: a string stays a string; parts become
    OpenAI's parts (files read, base64 encoded). Raises ``ValueError`` naming the part at fault."""
    if content is None or isinstance(content, str):
        return content
    out: list[dict[str, Any]] = []
    for index, part in enumerate(content):
        try:
            if isinstance(part, TextPart):
                out.append({"type": "text", "text": part.text})
            elif isinstance(part, ImageURLPart):
                out.append({"type": "image_url", "image_url": part.image_url.model_dump(exclude_none=True)})
            else:
                out.append(part.openai())
        except ValueError as exc:
            raise ValueError(f"content[{index}] ({part.type}): {exc}") from None
    return out


def text_of(content: Any) -> str:
    """The text of a content (parts other than text left out), for token estimates and logs."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""
