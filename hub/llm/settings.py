"""LLM settings (``HUB_LLM_*``) and the model aliases file.

Aliases are what flows and prompts name (``fast``, ``smart``, ``local``); each maps to one
litellm model with its provider details, and may fall back to other aliases::

    # models.yaml  (HUB_LLM_MODELS_FILE)
    default: fast
    models:
      fast:
        model: openai/gpt-4o-mini
        fallbacks: [local]                 # on errors that survive the retries
      smart:
        model: anthropic/claude-3-5-sonnet-20240620
        api_key_env: ANTHROPIC_API_KEY
        context_window_fallbacks: [long]   # when the messages do not fit
      local:
        model: openai/llama3.1             # any OpenAI-compatible server, called directly
        api_base: http://localhost:11434/v1
        api_key: none
        input_cost_per_token: 0
        output_cost_per_token: 0

``HUB_LLM_MODELS`` (JSON) adds or overrides aliases from the environment.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hub.flow import yamlpos


def _http_url(value: str | None) -> str | None:
    """An ``api_base`` as given, when it is an http(s) URL (else every call would fail, and be retried)."""
    if value is not None and not value.lower().startswith(("http://", "https://")):
        raise ValueError(f"{value!r} is not an http:// or https:// URL (e.g. http://localhost:11434/v1)")
    return value


class ModelSpec(BaseModel):
    """One alias: the litellm model it calls and how to reach it ("what" apart from "how")."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="litellm model name, 'provider/model' (e.g. openai/gpt-4o-mini).")
    api_base: str | None = Field(None, description="Base URL of an OpenAI-compatible server (http:// or https://).")
    api_key: str | None = Field(None, description="A literal key (prefer api_key_env).")
    api_key_env: str | None = Field(None, description="Name of the environment variable holding the key.")
    timeout: float | None = Field(None, gt=0, description="Seconds per request (default: HUB_LLM_TIMEOUT).")
    fallbacks: list[str] = Field(default_factory=list, description="Aliases tried when this one fails.")
    context_window_fallbacks: list[str] | None = Field(
        None, description="Aliases tried when the messages do not fit (default: fallbacks)."
    )
    input_cost_per_token: float | None = Field(None, ge=0, description="USD; overrides litellm's price map.")
    output_cost_per_token: float | None = Field(None, ge=0, description="USD; overrides litellm's price map.")
    params: dict[str, Any] = Field(default_factory=dict, description="Default call parameters.")
    mock_response: str | None = Field(None, description="Answer this text without calling anything (tests).")
    transport: Literal["auto", "openai", "litellm"] = Field(
        "auto",
        description="'openai': speak the OpenAI wire format directly (fast); 'litellm': through litellm; "
        "'auto': openai for an 'openai/...' model with an api_base, litellm otherwise.",
    )
    structured_output: Literal["json_schema", "json_object", "prompt"] = Field(
        "json_schema",
        description="How a step's output schema reaches the model: 'json_schema' (response_format with the "
        "schema: OpenAI, vLLM, llama.cpp, Ollama), 'json_object' (JSON mode only), 'prompt' (in the "
        "system message only, for servers that reject response_format).",
    )

    @field_validator("api_base")
    @classmethod
    def _api_base_is_a_url(cls, value: str | None) -> str | None:
        return _http_url(value)

    @property
    def has_price(self) -> bool:
        return self.input_cost_per_token is not None or self.output_cost_per_token is not None

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        return input_tokens * (self.input_cost_per_token or 0.0) + output_tokens * (self.output_cost_per_token or 0.0)


class ModelsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default: str | None = None
    models: dict[str, ModelSpec] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _fallbacks_exist(self) -> ModelsConfig:
        for name, spec in self.models.items():
            for other in [*spec.fallbacks, *(spec.context_window_fallbacks or [])]:
                if other not in self.models:
                    raise ValueError(f"model {name!r} falls back to {other!r}, which is not defined")
                if other == name:
                    raise ValueError(f"model {name!r} falls back to itself")
        return self


class LLMSettings(BaseSettings):
    """LLM layer settings from ``HUB_LLM_*``."""

    model_config = SettingsConfigDict(env_prefix="HUB_LLM_", extra="ignore")

    models_file: Path = Field(Path("models.yaml"), description="YAML file of model aliases (optional).")
    models: dict[str, ModelSpec] = Field(default_factory=dict, description="Aliases as JSON (override the file).")
    default_model: str | None = Field(None, description="Model used when neither step nor prompt names one.")
    api_base: str | None = Field(None, description="api_base for models that are not aliases.")
    api_key: str | None = Field(None, description="api_key for models that are not aliases.")
    timeout: float = Field(60.0, gt=0, description="Seconds per request; always set.")
    num_retries: int = Field(2, ge=0, description="Retries on rate limits (429), server errors and timeouts.")
    cache_ttl: float = Field(86400.0, gt=0, description="Default lifetime of cached responses (seconds).")
    max_connections: int = Field(
        256, ge=1, description="Open connections per process to OpenAI-compatible servers (more requests wait for one)."
    )
    preload: bool | None = Field(
        None, description="Import litellm in a thread at start-up when an alias may need it (default: `hub serve` "
        "does, `hub worker` does not: there the first call that needs it imports it, off the event loop)."
    )

    @field_validator("api_base")
    @classmethod
    def _api_base_is_a_url(cls, value: str | None) -> str | None:
        return _http_url(value)

    def check(self) -> None:
        """At start-up: the models file and ``HUB_LLM_MODELS`` load (raises ``ValueError`` naming the
        file and the bad key)."""
        try:
            self.load_models()
        except ValueError as exc:
            raise ValueError(f"invalid model aliases in {exc}") from None

    def load_models(self) -> ModelsConfig:
        """The aliases: the file (when it exists), then ``HUB_LLM_MODELS`` on top."""
        data: dict[str, Any] = {}
        if self.models_file and self.models_file.is_file():
            try:
                data = yamlpos.load_data(self.models_file.read_text()) or {}
            except yamlpos.YamlSyntaxError as exc:
                raise ValueError(exc.where(str(self.models_file))) from None
        try:
            config = ModelsConfig.model_validate(data)
            if self.models:
                config = ModelsConfig(default=config.default, models={**config.models, **self.models})
        except ValidationError as exc:
            problems = "; ".join(
                (f"{'.'.join(str(p) for p in e['loc'])}: " if e["loc"] else "") + e["msg"].removeprefix("Value error, ")
                for e in exc.errors()
            )
            source = f"{self.models_file} with HUB_LLM_MODELS" if self.models else str(self.models_file)
            raise ValueError(f"{source}: {problems}") from None
        if self.default_model:
            config.default = self.default_model
        return config


def unknown_model(name: str, config: ModelsConfig | None = None) -> str | None:
    """Why ``name`` cannot be called (a sentence), or None: it is an alias of the models file, a
    ``provider/model`` name, or a model litellm's price map knows by its bare name. Checked when a
    flow loads (``hub validate``) so that a typo is not a provider error at run time; not checked
    where no models are configured at all."""
    if config is None:
        try:
            config = LLMSettings().load_models()
        except Exception:  # a broken models file is reported when a model is called
            return None
    if not config.models:
        return None  # no models file here (a checkout without one, a worker configured elsewhere)
    if name in config.models or "/" in name or name in _known_bare_models():
        return None
    from hub.flow.loader import suggest

    aliases = sorted(config.models)
    listed = f" (aliases: {', '.join(aliases)})" if aliases else ""
    return (
        f"model {name!r} is not an alias in the models file{listed} nor a 'provider/model' name"
        f"{suggest(name, aliases)}; define it under 'models', or name its provider (e.g. openai/{name})"
    )


@lru_cache(maxsize=1)
def _known_bare_models() -> frozenset[str]:
    """Model names litellm resolves without a provider prefix, read from its price map file (no
    import of litellm, which takes seconds)."""
    import importlib.util
    import json

    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return frozenset()
    path = Path(spec.submodule_search_locations[0]) / "model_prices_and_context_window_backup.json"
    try:
        return frozenset(name for name in json.loads(path.read_text()) if "/" not in name)
    except (OSError, ValueError):
        return frozenset()
