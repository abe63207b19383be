"""The JSON Schema of flow files, for editor autocompletion and checking (``hub schema``)."""

from __future__ import annotations

import copy
from typing import Any

from hub.core.registry import trigger_registry
from hub.flow.models import ID_PATTERN, FlowHeader, RetryPolicy
from hub.tasks.registry import Registry, default_registry

TEMPLATE = {"type": "string", "pattern": r"\{\{|\{%", "description": "An expression"}


_NESTED_KEYS = ("properties", "patternProperties", "$defs")
_LIST_KEYS = ("anyOf", "oneOf", "allOf", "prefixItems")


def templatable(node: Any) -> Any:
    """Allow an expression string wherever a non-string value is expected, at any depth
    (a value is only known once rendered)."""
    if not isinstance(node, dict):
        return node
    out = dict(node)
    for key in _NESTED_KEYS:
        if isinstance(out.get(key), dict):
            out[key] = {k: templatable(v) for k, v in out[key].items()}
    for key in _LIST_KEYS:
        if isinstance(out.get(key), list):
            out[key] = [templatable(v) for v in out[key]]
    for key in ("items", "additionalProperties"):
        if isinstance(out.get(key), dict):
            out[key] = templatable(out[key])
    kind = out.get("type")
    needs = (kind is not None and kind != "string") or "$ref" in out or "const" in out or "enum" in out
    if needs:
        return {"anyOf": [out, TEMPLATE]}
    return out


def _lift_defs(schema: dict[str, Any], defs: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Move a sub-schema's $defs into the shared $defs under a prefix, rewriting $refs."""
    local = schema.pop("$defs", {})
    renames = {name: f"{prefix}{name}" for name in local}

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/"):
                    name = value.split("/")[-1]
                    out[key] = f"#/$defs/{renames.get(name, name)}"
                else:
                    out[key] = rewrite(value)
            return out
        if isinstance(node, list):
            return [rewrite(v) for v in node]
        return node

    for name, sub in local.items():
        defs[renames[name]] = templatable(rewrite(sub))
    return rewrite(schema)  # type: ignore[no-any-return]


def _task_schema(name: str, kind: Any, defs: dict[str, Any]) -> dict[str, Any]:
    params = kind.Params.model_json_schema(by_alias=True)
    params = _lift_defs(params, defs, f"{name.replace('.', '_')}__")
    nested: dict[str, str] = getattr(kind, "nested", {})
    task_list = {"type": "array", "items": {"$ref": "#/$defs/Task"}}
    properties: dict[str, Any] = {
        "id": {"type": "string", "pattern": ID_PATTERN, "description": "Unique id of the task in the flow."},
        "type": {"const": name},
        "description": {"type": "string"},
        "if": {"anyOf": [{"type": "string"}, {"type": "boolean"}], "description": "Run only when truthy."},
        "retry": {"$ref": "#/$defs/RetryPolicy"},
        "timeout": {"anyOf": [{"type": "string"}, {"type": "number"}], "description": "e.g. 30s, 10m"},
        "allow_failure": {"type": "boolean", "description": "A failure makes the execution WARNING, not FAILED."},
    }
    for key, prop in (params.get("properties") or {}).items():
        if key in nested:
            properties[key] = (
                task_list if nested[key] == "list" else {"type": "object", "additionalProperties": task_list}
            )
        else:
            properties[key] = templatable(prop)
    required = ["id", "type", *[r for r in params.get("required", []) if r not in ("id", "type")]]
    doc = (kind.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
    return {
        "type": "object",
        "title": name,
        "description": doc,
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def flow_json_schema(registry: Registry | None = None) -> dict[str, Any]:
    registry = registry or default_registry()
    schema = copy.deepcopy(FlowHeader.model_json_schema(by_alias=True))
    defs: dict[str, Any] = schema.setdefault("$defs", {})
    defs["RetryPolicy"] = defs.get("RetryPolicy") or RetryPolicy.model_json_schema()
    variants = []
    for name, kind in registry.items():
        key = "Task_" + name.replace(".", "_")
        defs[key] = _task_schema(name, kind, defs)
        variants.append({"if": {"properties": {"type": {"const": name}}, "required": ["type"]}, "then": {"$ref": f"#/$defs/{key}"}})
    defs["Task"] = {
        "type": "object",
        "required": ["id", "type"],
        "properties": {"type": {"enum": registry.types()}},
        "allOf": variants,
    }
    triggers = trigger_registry(registry.plugins)
    trigger_variants = []
    for name, kind in triggers.items():
        key = "Trigger_" + name.replace(".", "_")
        defs[key] = _lift_defs(kind.Config.model_json_schema(by_alias=True), defs, f"{key}__")
        trigger_variants.append({"if": {"properties": {"type": {"const": name}}, "required": ["type"]},
                                 "then": {"$ref": f"#/$defs/{key}"}})
    defs["Trigger"] = {"type": "object", "required": ["id", "type"],
                       "properties": {"type": {"enum": triggers.types()}}, "allOf": trigger_variants}
    props = schema["properties"]
    props["triggers"] = {"type": "array", "items": {"$ref": "#/$defs/Trigger"},
                         "description": props.get("triggers", {}).get("description", "")}
    for key in ("tasks", "errors", "finally"):
        if key in props:
            props[key] = {**{k: v for k, v in props[key].items() if k not in ("items",)}, "type": "array",
                          "items": {"$ref": "#/$defs/Task"}}
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "hub flow"
    schema["description"] = "A hub flow file (YAML). Generated by `hub schema`."
    return schema
