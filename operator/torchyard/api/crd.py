"""Render CustomResourceDefinitions from the pydantic models.

pydantic emits JSON Schema (draft 2020-12) with $refs; Kubernetes wants a structural
OpenAPI v3.0 schema: everything inlined, a type on every node, no anyOf for optional
fields, exclusive bounds as booleans, int-or-string as an extension. This module is the
translation, so the models stay the one source of truth.
"""

from __future__ import annotations

from typing import Any

from torchyard.api.base import GROUP, VERSION
from torchyard.api.kinds import CATEGORY, KINDS, Kind

Schema = dict[str, Any]

_DROPPED_KEYS = {"title", "discriminator", "examples"}
_KEPT_FORMATS = {"date-time", "int32", "int64", "double", "float", "byte"}


def _resolve(node: Schema, defs: dict[str, Schema]) -> Schema:
    if "$ref" not in node:
        return node
    name = node["$ref"].rsplit("/", 1)[-1]
    merged = {**defs[name], **{k: v for k, v in node.items() if k != "$ref"}}
    return _resolve(merged, defs)


def _without_null(options: list[Schema]) -> list[Schema]:
    return [option for option in options if option.get("type") != "null"]


def structural(node: Schema, defs: dict[str, Schema]) -> Schema:
    """Translate one pydantic JSON-schema node into a structural OpenAPI v3 node."""
    node = _resolve(node, defs)
    for combinator in ("anyOf", "oneOf"):
        if combinator in node:
            options = _without_null(node[combinator])
            rest = {k: v for k, v in node.items() if k != combinator}
            if len(options) == 1:
                # The field's own description and default win over its type's; CEL
                # rules of both apply.
                option = _resolve(options[0], defs)
                rules = [
                    *option.get("x-kubernetes-validations", []),
                    *rest.get("x-kubernetes-validations", []),
                ]
                merged = {**option, **rest}
                if rules:
                    merged["x-kubernetes-validations"] = rules
                return structural(merged, defs)
            types = {_resolve(option, defs).get("type") for option in options}
            if types == {"string", "integer"}:
                # The string form's pattern and length still apply (the API server checks
                # them on strings only): a quantity such as "2 GB" is refused at apply.
                text = next(
                    _resolve(o, defs) for o in options if _resolve(o, defs)["type"] == "string"
                )
                kept = {k: text[k] for k in ("pattern", "maxLength") if k in text}
                return {**_clean(rest), **kept, "x-kubernetes-int-or-string": True}
            if all("const" in _resolve(o, defs) or "enum" in _resolve(o, defs) for o in options):
                values: list[Any] = []
                for option in options:
                    option = _resolve(option, defs)
                    values += option.get("enum", [option.get("const")])
                return structural({**rest, "type": "string", "enum": values}, defs)
            raise ValueError(f"cannot express {combinator} of {types} structurally")
    if "allOf" in node and len(node["allOf"]) == 1:
        rest = {k: v for k, v in node.items() if k != "allOf"}
        return structural({**_resolve(node["allOf"][0], defs), **rest}, defs)

    out = _clean(node)
    if "const" in out:
        out["enum"] = [out.pop("const")]
    if out.get("type") == "object":
        if "properties" in node:
            out["properties"] = {
                name: structural(child, defs) for name, child in node["properties"].items()
            }
        if isinstance(node.get("additionalProperties"), dict):
            out["additionalProperties"] = structural(node["additionalProperties"], defs)
        else:
            out.pop("additionalProperties", None)
    if out.get("type") == "array":
        out["items"] = structural(node["items"], defs)
    return out


def _clean(node: Schema) -> Schema:
    out = {k: v for k, v in node.items() if k not in _DROPPED_KEYS and k != "$defs"}
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(bound), int | float) and not isinstance(out[bound], bool):
            out[plain] = out.pop(bound)
            out[bound] = True
    if out.get("format") not in _KEPT_FORMATS:
        out.pop("format", None)
    if out.get("default", "unset") is None:
        out.pop("default")
    if "description" in out:
        # Docstrings wrap at the source's line length; kubectl explain re-wraps anyway.
        out["description"] = " ".join(out["description"].split())
    for key in ("properties", "items", "additionalProperties"):
        out.pop(key, None)
    return out


_KEY_ORDER = ("description", "type", "format", "enum", "default")


def _ordered(node: Any) -> Any:
    """Readable key order (description and type first), copying so YAML has no anchors."""
    if isinstance(node, list):
        return [_ordered(item) for item in node]
    if not isinstance(node, dict):
        return node
    first = [key for key in _KEY_ORDER if key in node]
    rest = sorted(key for key in node if key not in _KEY_ORDER)
    return {key: _ordered(node[key]) for key in first + rest}


def model_schema(model: type) -> Schema:
    raw = model.model_json_schema(by_alias=True, mode="validation")  # type: ignore[attr-defined]
    return _ordered(structural(raw, raw.get("$defs", {})))


def openapi_schema(kind: Kind) -> Schema:
    return {
        "type": "object",
        "description": kind.description,
        "required": ["spec"],
        "x-kubernetes-validations": [kind.name_rule().render()],
        "properties": {
            "apiVersion": {
                "type": "string",
                "description": "APIVersion defines the versioned schema of this object.",
            },
            "kind": {"type": "string", "description": "Kind is the type of this object."},
            "metadata": {"type": "object"},
            "spec": model_schema(kind.spec),
            "status": model_schema(kind.status),
        },
    }


def render_crd(kind: Kind) -> dict[str, Any]:
    """The CustomResourceDefinition of one kind, as a plain dict ready for YAML."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{kind.plural}.{GROUP}",
            "labels": {
                "app.kubernetes.io/name": "torchyard",
                "app.kubernetes.io/part-of": "torchyard",
            },
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.singular,
                "shortNames": list(kind.short_names),
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": openapi_schema(kind)},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [column.render() for column in kind.columns],
                }
            ],
        },
    }


def render_all() -> dict[str, dict[str, Any]]:
    """File name in crds/ -> CRD, for every kind."""
    return {f"{GROUP}_{kind.plural}.yaml": render_crd(kind) for kind in KINDS}


def to_yaml(document: dict[str, Any]) -> str:
    import yaml

    header = "# Generated by `torchyard crds` from torchyard.api; do not edit by hand.\n"
    return header + yaml.safe_dump(document, sort_keys=False, width=100, allow_unicode=True)


def crd_kustomization(file_names: list[str]) -> str:
    """crds/kustomization.yaml, so that overlays can include the CRDs as a directory."""
    lines = [
        "# Generated by `torchyard crds`; do not edit by hand.",
        "apiVersion: kustomize.config.k8s.io/v1beta1",
        "kind: Kustomization",
        "resources:",
        *(f"  - {name}" for name in file_names),
    ]
    return "\n".join(lines) + "\n"
