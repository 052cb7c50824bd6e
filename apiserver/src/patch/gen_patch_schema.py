#!/usr/bin/env python3
"""Generate patch_schema_generated.rs: the structural patch metadata table used by
the strategic merge patch engine (strategic.rs).

Input: the Kubernetes v1.33 OpenAPI definitions as shipped by the PyPI package
`kubernetes-validate` (kubernetes-json-schema/v1.33.0-local/_definitions.json).
Only structural facts are extracted: which fields are objects, lists or maps, what
their element definitions are, the x-kubernetes-patch-strategy /
x-kubernetes-patch-merge-key extensions (strategic merge patch) and the
x-kubernetes-list-type / x-kubernetes-list-map-keys / x-kubernetes-map-type
extensions (server-side apply). Descriptions and any other prose are
never copied.

Usage:
    pip install kubernetes-validate
    python3 gen_patch_schema.py [--defs PATH] [--out PATH]

By default the definitions file is located through the installed package and the
output is written next to this script.
"""

import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../scripts/codegen"))
from upstream_definitions import SCHEMA_VERSION, ref_name, run  # noqa: E402


# Root kinds served with strategic merge patch support. Every definition reachable
# from these through $ref is emitted.
ROOTS = [
    "io.k8s.api.core.v1.Pod",
    "io.k8s.api.core.v1.PodTemplate",
    "io.k8s.api.core.v1.ReplicationController",
    "io.k8s.api.core.v1.Service",
    "io.k8s.api.core.v1.Namespace",
    "io.k8s.api.core.v1.Node",
    "io.k8s.api.core.v1.Endpoints",
    "io.k8s.api.core.v1.ConfigMap",
    "io.k8s.api.core.v1.Secret",
    "io.k8s.api.core.v1.ServiceAccount",
    "io.k8s.api.core.v1.LimitRange",
    "io.k8s.api.core.v1.ResourceQuota",
    "io.k8s.api.core.v1.Event",
    "io.k8s.api.core.v1.ComponentStatus",
    "io.k8s.api.core.v1.Binding",
    "io.k8s.api.events.v1.Event",
    "io.k8s.api.apps.v1.Deployment",
    "io.k8s.api.apps.v1.ReplicaSet",
    "io.k8s.api.apps.v1.DaemonSet",
    "io.k8s.api.apps.v1.StatefulSet",
    "io.k8s.api.apps.v1.ControllerRevision",
    "io.k8s.api.batch.v1.Job",
    "io.k8s.api.batch.v1.CronJob",
    "io.k8s.api.autoscaling.v1.Scale",
    "io.k8s.api.policy.v1.Eviction",
    "io.k8s.api.policy.v1.PodDisruptionBudget",
    "io.k8s.api.discovery.v1.EndpointSlice",
]

STRATEGIES = {
    None: "Unset",
    "merge": "Merge",
    "replace": "Replace",
    "retainKeys": "RetainKeys",
    "merge,retainKeys": "MergeRetainKeys",
    "retainKeys,merge": "MergeRetainKeys",
}


def types_of(node):
    t = node.get("type")
    if t is None:
        return set()
    if isinstance(t, str):
        return {t}
    return set(t)


class Generator:
    def __init__(self, defs):
        self.defs = defs
        self.order = []  # definition names with properties, in emission order
        self.index = {}

    def is_structured(self, name):
        """A definition the engine can descend into: an object with named properties."""
        d = self.defs[name]
        return bool(d.get("properties"))

    def visit(self, name):
        if name in self.index:
            return self.index[name]
        if name not in self.defs:
            sys.exit(f"unknown definition {name}")
        self.index[name] = len(self.order)
        self.order.append(name)
        for prop in self.defs[name].get("properties", {}).values():
            for ref in self.refs_of(prop):
                if self.is_structured(ref):
                    self.visit(ref)
        return self.index[name]

    def refs_of(self, prop):
        out = []
        if "$ref" in prop:
            out.append(ref_name(prop["$ref"]))
        for key in ("items", "additionalProperties"):
            sub = prop.get(key)
            if isinstance(sub, dict):
                out.extend(self.refs_of(sub))
        return out

    def elem(self, node, where):
        """Rust Elem expression for a list item / map value schema."""
        if "$ref" in node:
            name = ref_name(node["$ref"])
            if self.is_structured(name):
                return f"Def({self.index[name]})"
            return "Scalar"
        ts = types_of(node)
        if "array" in ts:
            inner = node.get("items", {})
            if "$ref" in inner and self.is_structured(ref_name(inner["$ref"])):
                sys.exit(f"{where}: nested list of objects is not supported by the table")
            return "Scalars"
        if "object" in ts and (node.get("properties") or node.get("additionalProperties")):
            sys.exit(f"{where}: inline object schemas are not supported by the table")
        return "Scalar"

    def field(self, def_name, field_name, prop):
        where = f"{def_name}.{field_name}"
        strategy = prop.get("x-kubernetes-patch-strategy")
        if strategy not in STRATEGIES:
            sys.exit(f"{where}: unknown patch strategy {strategy!r}")
        merge_key = prop.get("x-kubernetes-patch-merge-key")
        ts = types_of(prop)
        if "$ref" in prop:
            name = ref_name(prop["$ref"])
            if not self.is_structured(name):
                # Quantity, IntOrString, Time, RawExtension, FieldsV1...: values that
                # are replaced (scalars) or merged without schema (opaque objects).
                if strategy is None:
                    return None
                shape = "Opaque"
            else:
                shape = f"Obj({self.index[name]})"
        elif "array" in ts:
            shape = f"List({self.elem(prop.get('items', {}), where)})"
        elif "additionalProperties" in prop:
            shape = f"Map({self.elem(prop['additionalProperties'], where)})"
        else:
            if strategy is not None or merge_key is not None:
                sys.exit(f"{where}: patch metadata on a scalar field")
            return None
        if merge_key is not None and not shape.startswith("List"):
            sys.exit(f"{where}: merge key on a non-list field")
        if strategy in ("merge", "merge,retainKeys", "retainKeys,merge") and shape.startswith("List(Def") and merge_key is None:
            sys.exit(f"{where}: list of objects with merge strategy but no merge key")
        key = "None" if merge_key is None else f"Some({json.dumps(merge_key)})"
        return f"f({json.dumps(field_name)}, {shape}, {STRATEGIES[strategy]}, {key}, {self.list_type(prop, where)}, {self.map_type(prop, where)})"

    @staticmethod
    def list_type(prop, where):
        lt = prop.get("x-kubernetes-list-type")
        keys = prop.get("x-kubernetes-list-map-keys")
        if lt is None:
            if keys is not None:
                sys.exit(f"{where}: list-map-keys without list-type")
            return "L::Unset"
        if lt == "atomic":
            return "L::Atomic"
        if lt == "set":
            return "L::Set"
        if lt == "map":
            if not keys:
                sys.exit(f"{where}: list-type map without list-map-keys")
            return "L::Map(&[" + ", ".join(json.dumps(k) for k in keys) + "])"
        sys.exit(f"{where}: unknown list type {lt!r}")

    @staticmethod
    def map_type(prop, where):
        mt = prop.get("x-kubernetes-map-type")
        if mt is None:
            return "M::Unset"
        if mt == "atomic":
            return "M::Atomic"
        if mt == "granular":
            return "M::Granular"
        sys.exit(f"{where}: unknown map type {mt!r}")

    def atomic_def(self, name):
        mt = self.defs[name].get("x-kubernetes-map-type")
        if mt not in (None, "atomic", "granular"):
            sys.exit(f"{name}: unknown map type {mt!r}")
        return "true" if mt == "atomic" else "false"

    def gvks(self, name):
        out = []
        for gvk in self.defs[name].get("x-kubernetes-group-version-kind", []):
            group, version = gvk.get("group", ""), gvk["version"]
            api_version = version if group == "" else f"{group}/{version}"
            out.append((api_version, gvk["kind"]))
        return out

    def render(self):
        for root in ROOTS:
            self.visit(root)
        lines = [
            "// generated by gen_patch_schema.py; do not edit",
            f"// source: kubernetes-validate {SCHEMA_VERSION} OpenAPI definitions (structure only)",
            "",
            "@IMPORTS@",
            "",
            "/// Shorthand constructor keeping the table compact.",
            "const fn f(",
            "    name: &'static str,",
            "    shape: super::patch_schema::Shape,",
            "    strategy: super::patch_schema::Strategy,",
            "    merge_key: Option<&'static str>,",
            "    list_type: L,",
            "    map_type: M,",
            ") -> PatchField {",
            "    PatchField {",
            "        name,",
            "        shape,",
            "        strategy,",
            "        merge_key,",
            "        list_type,",
            "        map_type,",
            "    }",
            "}",
            "",
            "/// Every definition reachable from the served kinds, indexed by position;",
            "/// fields are sorted by name for binary search.",
            "#[rustfmt::skip]",
            f"pub(super) static DEFS: [PatchDef; {len(self.order)}] = [",
        ]
        for i, name in enumerate(self.order):
            fields = []
            for field_name in sorted(self.defs[name].get("properties", {})):
                rendered = self.field(name, field_name, self.defs[name]["properties"][field_name])
                if rendered is not None:
                    fields.append(rendered)
            if not fields:
                lines.append(f"    /* {i} */ PatchDef {{ name: {json.dumps(name)}, atomic: {self.atomic_def(name)}, fields: &[] }},")
                continue
            lines.append(f"    /* {i} */ PatchDef {{ name: {json.dumps(name)}, atomic: {self.atomic_def(name)}, fields: &[")
            for f in fields:
                lines.append(f"        {f},")
            lines.append("    ] },")
        lines.append("];")
        lines.append("")
        lines.append("/// (apiVersion, kind, definition index) for every served root kind.")
        lines.append("#[rustfmt::skip]")
        roots = []
        for root in ROOTS:
            gvks = self.gvks(root)
            if not gvks:
                sys.exit(f"{root}: no x-kubernetes-group-version-kind")
            for api_version, kind in gvks:
                roots.append((api_version, kind, self.index[root]))
        lines.append(f"pub(super) static ROOTS: [(&str, &str, u16); {len(roots)}] = [")
        for api_version, kind, idx in roots:
            lines.append(f"    ({json.dumps(api_version)}, {json.dumps(kind)}, {idx}),")
        lines.append("];")
        body = "\n".join(lines) + "\n"
        return body.replace("@IMPORTS@", self.imports(body))

    @staticmethod
    def imports(body):
        """`use` lines naming only the variants the table mentions (unused imports
        would fail clippy)."""
        groups = [
            ("Elem", ["Def", "Scalar", "Scalars"]),
            ("Shape", ["List", "Map", "Obj", "Opaque"]),
            ("Strategy", ["Merge", "MergeRetainKeys", "Replace", "RetainKeys", "Unset"]),
        ]
        out = []
        for enum, variants in groups:
            used = [v for v in variants if re.search(r"[(, ]" + v + r"[(),]", body)]
            if used:
                out.append(f"use super::patch_schema::{enum}::{{{', '.join(used)}}};")
        out.append("use super::patch_schema::{ListType as L, MapType as M, PatchDef, PatchField};")
        return "\n".join(out)


def main():
    run(__doc__.splitlines()[0], __file__, "patch_schema_generated.rs", lambda defs: Generator(defs).render())


if __name__ == "__main__":
    main()
