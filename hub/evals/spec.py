"""Eval files: ``evals/<name>.yaml`` → strict models, every mistake reported with file and line.

::

    name: support_triage
    target: {prompt: support_triage}            # or {flow: flows/x.yaml, prompt: support_triage}
    versions: [production, latest]              # labels or numbers, compared side by side
    models: [fast]                              # default: the prompt's own model
    repeat: 2                                   # each case twice: flaky cases are reported
    concurrency: 8
    vars: {product: ACME Cloud}                 # merged under every case's vars
    assert:                                     # run on every case
      - {type: field, path: category}           # equals expected.category
    metrics:
      - {type: classification, name: category, path: category}
    thresholds: {pass_rate: 0.9, metrics: {category.accuracy: 0.9}}
    cases:
      - id: double-charge
        vars: {subject: Charged twice, body: "..."}
        expected: {category: billing}
        tags: [billing]
        assert: [{type: icontains, path: draft_reply, value: refund, negate: true}]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from hub.errors import FlowError, Location
from hub.flow import yamlpos

ID_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$"


class EvalFileError(FlowError):
    """An eval file that does not parse or validate; every problem with file, line and key."""

    def __init__(self, locations: list[Location], source: str | None = None):
        super().__init__(locations, source or "eval file")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# -- assertions ------------------------------------------------------------------------------------


class _Assertion(_Strict):
    """Options every assertion takes."""

    type: str
    name: str | None = Field(None, description="A label for reports (default: the type and path).")
    path: str | None = Field(None, description="Check this field of the JSON output ('a.b', 'items.0').")
    negate: bool = Field(False, description="Pass when the check fails (and score 1 - score).")
    weight: float = Field(1.0, ge=0, description="Weight in the case score; 0 = reported, not counted.")
    threshold: float | None = Field(None, ge=0, le=1, description="Pass when the score reaches this.")

    @property
    def label(self) -> str:
        kind = self.type
        out = self.name or (f"{kind}:{self.path}" if self.path else kind)
        return f"not {out}" if self.negate and not self.name else out


class Equals(_Assertion):
    type: Literal["equals"]
    value: Any = Field(None, description="Expected value (default: the case's expected, at path).")


class Contains(_Assertion):
    type: Literal["contains", "icontains"]
    value: str


class ContainsMany(_Assertion):
    type: Literal["contains_any", "contains_all"]
    values: list[str] = Field(min_length=1)
    ignore_case: bool = True


class Regex(_Assertion):
    type: Literal["regex"]
    pattern: str
    ignore_case: bool = False

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        import re

        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


class IsJson(_Assertion):
    type: Literal["is_json"]


class JsonSchema(_Assertion):
    type: Literal["json_schema"]
    schema_: dict[str, Any] = Field(alias="schema")

    @field_validator("schema_")
    @classmethod
    def _valid_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        try:
            Draft202012Validator.check_schema(value)
        except SchemaError as exc:
            raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
        return value


class FieldCheck(_Assertion):
    """A field of the JSON output: equal to a value, one of several, within a numeric range.
    With none of them, the field must equal the same field of the case's expected output."""

    type: Literal["field"]
    path: str  # type: ignore[assignment]
    equals: Any = None
    one_of: list[Any] | None = None
    min: float | None = None
    max: float | None = None


class Python(_Assertion):
    """``function(output, context)`` (``context``: expected, vars, inputs, metadata, text,
    latency_ms, cost, case_id), sync or async, returning a bool, a score in [0, 1], or
    {pass, score, reason}."""

    type: Literal["python"]
    function: str = Field(description="Import path 'package.module:function'.")


class Latency(_Assertion):
    type: Literal["latency"]
    max_ms: float = Field(gt=0)


class Cost(_Assertion):
    type: Literal["cost"]
    max: float = Field(ge=0, description="USD for the case (every call, repairs included).")


class Similar(_Assertion):
    """Cosine similarity of embeddings (through the LLM layer) to ``value`` or the expected output."""

    type: Literal["similar"]
    value: str | None = None
    model: str | None = Field(None, description="Embedding model alias (default: the eval's embedding_model).")
    threshold: float | None = Field(0.8, ge=0, le=1)


class LlmRubric(_Assertion):
    """A judge model grades the output against a rubric, answering {pass, score, reason} as JSON."""

    type: Literal["llm_rubric"]
    rubric: str
    model: str | None = Field(None, description="Judge model alias (default: the eval's judge_model).")


class ToolCallCheck(_Strict):
    """A tool call the run must (or, with ``max: 0``, must not) make."""

    name: str = Field(description="The tool's name.")
    arguments: dict[str, Any] | None = Field(None, description="JSON Schema the call's arguments must match.")
    min: int = Field(1, ge=0, description="At least this many matching calls.")
    max: int | None = Field(None, ge=0, description="At most this many matching calls.")

    @field_validator("arguments")
    @classmethod
    def _valid_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else JsonSchema._valid_schema(value)  # type: ignore[operator]


class Trajectory(_Assertion):
    """What a flow run did on its way (flow targets): the steps that ran, in order, the tool calls
    found in step outputs (``tool_calls: [{name, arguments}]``), the LLM rounds, an approval."""

    type: Literal["trajectory"]
    steps: list[str] | None = Field(None, description="Step ids that must run, in this order (others may run between).")
    not_steps: list[str] | None = Field(None, description="Step ids that must not run.")
    max_steps: int | None = Field(None, ge=0, description="At most this many step runs.")
    max_turns: int | None = Field(None, ge=0, description="At most this many model requests (every round, every step).")
    tool_calls: list[ToolCallCheck] | None = None
    approval: bool | None = Field(None, description="true: an approval was requested; false: none was.")


Assertion = Annotated[
    Equals | Contains | ContainsMany | Regex | IsJson | JsonSchema | FieldCheck | Python | Latency | Cost
    | Similar | LlmRubric | Trajectory,
    Field(discriminator="type"),
]
ASSERTION_TYPES = (
    "equals", "contains", "icontains", "contains_any", "contains_all", "regex", "is_json", "json_schema",
    "field", "python", "latency", "cost", "similar", "llm_rubric", "trajectory",
)


# -- dataset-level metrics -------------------------------------------------------------------------


class Classification(_Strict):
    """Accuracy, per-label precision / recall and a confusion matrix of one output field."""

    type: Literal["classification"]
    name: str = Field(pattern=ID_PATTERN)
    path: str = Field(description="The predicted label: this field of the output.")
    expected_path: str | None = Field(None, description="The true label in the case's expected (default: path).")
    labels: list[str] | None = Field(None, description="Fixed label order for the confusion matrix.")


Metric = Annotated[Classification, Field(discriminator="type")]
_TAGS = {*ASSERTION_TYPES, "classification"}


class Thresholds(_Strict):
    """What every compared version × model must reach for the run to pass."""

    pass_rate: float | None = Field(None, ge=0, le=1, description="Share of passing case runs.")
    mean_score: float | None = Field(None, ge=0, le=1)
    max_p95_latency_ms: float | None = Field(None, gt=0)
    max_cost: float | None = Field(None, ge=0, description="USD for the whole dataset.")
    max_flaky: int | None = Field(None, ge=0, description="Cases whose repeats disagree.")
    max_errors: int | None = Field(None, ge=0, description="Case runs whose call failed.")
    metrics: dict[str, float] = Field(
        default_factory=dict,
        description="Minimum metric values: 'category.accuracy', 'category.recall.billing', ...",
    )


class Gates(_Strict):
    """What a candidate must reach against the version it would replace (``hub eval --candidate
    ... --against ...`` and ``hub prompts promote --require-eval``), per model."""

    min_pass_rate_delta: float = Field(
        0.0, ge=-1, le=1, description="Candidate pass rate minus the current one, at least (0: not below it)."
    )
    max_regressions: int | None = Field(None, ge=0, description="Cases that passed before and fail now, at most.")
    min_score_delta: float | None = Field(None, ge=-1, le=1, description="Mean score difference, at least.")
    min_accuracy: float | None = Field(None, ge=0, le=1, description="Accuracy of every classification metric.")
    metrics: dict[str, float] = Field(
        default_factory=dict, description="Metric differences, at least: {'category.accuracy': 0}.",
    )
    max_cost_ratio: float | None = Field(None, gt=0, description="Candidate cost / current cost, at most.")
    max_latency_ratio: float | None = Field(None, gt=0, description="Candidate p95 latency / current, at most.")


class Online(_Strict):
    """Score a share of the production calls of a prompt label with this file's assertions."""

    label: str = Field("production", description="The prompt label whose calls are scored.")
    sample_rate: float = Field(0.1, gt=0, le=1, description="Share of the calls scored.")
    window: int = Field(50, ge=1, le=10_000, description="Mean over the newest this many scores.")
    alert_below: float | None = Field(None, ge=0, le=1, description="A window mean below this is an alert.")
    min_samples: int = Field(10, ge=1, description="Scores in the window before an alert can fire.")
    alert_flow: str | None = Field(None, description="Flow ('namespace.id') started when the alert fires.")


# -- the file ----------------------------------------------------------------------------------------


class Target(_Strict):
    """A prompt (rendered, called and validated exactly as ``llm.chat`` does), or a flow run with
    its outputs (the prompt named here then gets the versions and models compared)."""

    prompt: str | None = Field(None, pattern=ID_PATTERN, description="Prompt name (no label: see 'versions').")
    flow: str | None = Field(None, description="Path of a flow file, relative to the eval file or the project.")

    @model_validator(mode="after")
    def _one_target(self) -> Target:
        if self.prompt is None and self.flow is None:
            raise ValueError("give 'prompt' (a prompt name) or 'flow' (a flow file)")
        return self


class Case(_Strict):
    id: str | None = Field(None, pattern=ID_PATTERN, description="Stable id (default: case-<n>).")
    description: str | None = None
    vars: dict[str, Any] = Field(default_factory=dict, description="Prompt variables (prompt targets).")
    inputs: dict[str, Any] = Field(default_factory=dict, description="Flow inputs (flow targets).")
    expected: Any = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    assert_: list[Assertion] = Field(default_factory=list, alias="assert")


class EvalSpec(_Strict):
    name: str = Field(pattern=ID_PATTERN)
    description: str | None = None
    target: Target
    versions: list[str | int] = Field(
        default_factory=lambda: list[str | int](["production"]), min_length=1, description="Labels or version numbers."
    )
    models: list[str] | None = Field(None, min_length=1, description="Model aliases (default: the prompt's).")
    repeat: int = Field(1, ge=1, le=50)
    concurrency: int = Field(4, ge=1, le=256)
    max_repairs: int | None = Field(None, ge=0, le=10, description="Re-asks after an invalid answer.")
    judge_model: str | None = Field(None, description="Default model of llm_rubric assertions.")
    embedding_model: str | None = Field(None, description="Default model of similar assertions.")
    vars: dict[str, Any] = Field(default_factory=dict, description="Defaults under every case's vars.")
    assert_: list[Assertion] = Field(default_factory=list, alias="assert")
    metrics: list[Metric] = Field(default_factory=list)
    thresholds: Thresholds = Field(default_factory=Thresholds)
    gates: Gates = Field(default_factory=Gates)
    cache: bool = Field(True, description="Reuse the answers of earlier runs for identical requests ('--no-cache').")
    online: Online | None = Field(None, description="Score sampled production calls ('hub eval online attach').")
    dataset: str | None = Field(None, description="A YAML file holding more cases (a list), relative to this file.")
    cases: list[Case] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> EvalSpec:
        if self.target.prompt is None and (self.versions != ["production"] or self.models):
            raise ValueError("'versions' and 'models' compare a prompt: name it as target.prompt")
        return self

    def case_id(self, index: int) -> str:
        return self.cases[index].id or f"case-{index + 1}"


class LoadedEval(BaseModel):
    """An eval file as loaded: the spec (cases from the dataset file included) and where it is."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    spec: EvalSpec
    file: str | None = None
    source: str = ""

    @property
    def directory(self) -> Path:
        return Path(self.file).parent if self.file else Path(".")


# -- loading -------------------------------------------------------------------------------------


def _locations(exc: ValidationError, positions: yamlpos.Positions, file: str | None, prefix: tuple[Any, ...] = ()) -> list[Location]:
    from hub.flow.loader import suggest

    out = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and ("[" in p or p.startswith("function-"))))
        # the discriminated union adds the tag ('field', 'equals', ...) to the path: drop it
        loc = tuple(p for i, p in enumerate(loc) if not (i > 0 and p in _TAGS and isinstance(loc[i - 1], int)))
        path = (*prefix, *loc)
        kind = err["type"]
        if kind == "extra_forbidden":
            message = f"unknown key {loc[-1]!r}{suggest(str(loc[-1]), _known_keys())}"
            key = True
        elif kind == "missing":
            message, path, key = f"missing required key {loc[-1]!r}", path[:-1], True
        elif kind in ("union_tag_invalid", "union_tag_not_found"):
            tag = (err.get("ctx") or {}).get("tag", "")
            message = f"unknown type {tag!r}; expected one of {', '.join(ASSERTION_TYPES)}{suggest(tag, ASSERTION_TYPES)}"
            path, key = (*path, "type"), False
        else:
            message, key = err["msg"].removeprefix("Value error, "), False
        line, column = positions.of(path, key=key)
        out.append(Location(path, message, file, line, column))
    return sorted(out, key=lambda loc: (loc.line or 0, loc.column or 0))


def _known_keys() -> list[str]:
    """Every key an eval file may hold somewhere (what a misspelt key is matched against)."""
    names: set[str] = set()
    models: tuple[type[BaseModel], ...] = (
        EvalSpec, Case, Target, Thresholds, Gates, Online, ToolCallCheck, Classification, *_assertion_models(),
    )
    for model in models:
        names |= {f.alias or n for n, f in model.model_fields.items()}
    return sorted(names)


def _assertion_models() -> tuple[type[BaseModel], ...]:
    return (
        Equals, Contains, ContainsMany, Regex, IsJson, JsonSchema, FieldCheck, Python, Latency, Cost, Similar, LlmRubric,
        Trajectory,
    )


def load_text(text: str, file: str | None = None) -> LoadedEval:
    """Parse an eval file's text; raises :class:`EvalFileError` listing every problem."""
    try:
        data, positions = yamlpos.load(text, max_nodes=None)  # a local file: any number of cases
    except yamlpos.YamlSyntaxError as exc:
        raise EvalFileError([Location((), str(exc), file, exc.line, exc.column)], file) from None
    if not isinstance(data, dict):
        raise EvalFileError([Location((), "an eval file is a mapping with 'name', 'target' and 'cases'", file, 1, 1)], file)
    try:
        spec = EvalSpec.model_validate(data)
    except ValidationError as exc:
        raise EvalFileError(_locations(exc, positions, file), file) from None
    loaded = LoadedEval(spec=spec, file=file, source=text)
    if spec.dataset:
        extra = load_dataset(loaded.directory / spec.dataset)
        spec.cases = [*spec.cases, *extra]
    _unique_ids(spec, positions, file)
    return loaded


def load_file(path: str | Path) -> LoadedEval:
    path = Path(path)
    if not path.is_file():
        raise EvalFileError([Location((), "no such file; eval files live in evals/<name>.yaml", str(path))], str(path))
    return load_text(path.read_text(), str(path))


def load_dataset(path: Path) -> list[Case]:
    """A dataset file: a YAML list of cases (what 'hub eval add-case' appends to)."""
    file = str(path)
    if not path.is_file():
        raise EvalFileError([Location(("dataset",), "the dataset file does not exist", file)], file)
    try:
        data, positions = yamlpos.load(path.read_text(), max_nodes=None)  # a local file: any number of cases
    except yamlpos.YamlSyntaxError as exc:
        raise EvalFileError([Location((), str(exc), file, exc.line, exc.column)], file) from None
    if data is None:
        return []
    if not isinstance(data, list):
        raise EvalFileError([Location((), "a dataset file is a YAML list of cases", file, 1, 1)], file)
    cases, problems = [], []
    for i, raw in enumerate(data):
        try:
            cases.append(Case.model_validate(raw))
        except ValidationError as exc:
            problems += _locations(exc, positions, file, (i,))
    if problems:
        raise EvalFileError(problems, file)
    return cases


def _unique_ids(spec: EvalSpec, positions: yamlpos.Positions, file: str | None) -> None:
    seen: dict[str, int] = {}
    problems = []
    for i in range(len(spec.cases)):
        cid = spec.case_id(i)
        if cid in seen:
            line, column = positions.of(("cases", i, "id"))
            problems.append(Location(("cases", i, "id"), f"case id {cid!r} is already used by case {seen[cid] + 1}", file, line, column))
        seen[cid] = i
    if problems:
        raise EvalFileError(problems, file)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of eval files (for editors: ``hub eval schema > eval.schema.json``)."""
    schema = EvalSpec.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "hub eval file"
    return schema


def dump_schema() -> str:
    return json.dumps(json_schema(), indent=2)
