#!/usr/bin/env python3
"""Generate schema_table_generated.rs: the catalog of kinds whose schemas the
OpenAPI documents can carry, and the structural overlay laid on the schemas
k8s-openapi produces (schemas.rs).

Input: the Kubernetes v1.33 OpenAPI definitions shipped by the PyPI package
`kubernetes-validate` (kubernetes-json-schema/v1.33.0-local/_definitions.json).

Only structure is extracted, never prose:
  - the catalog: every definition of a generally available package (its
    name's version segment is vN) that carries `x-kubernetes-group-version-kind` (list kinds excepted: k8s-openapi
    has no types for them; schemas.rs builds them), with the Rust type
    k8s-openapi generates for it;
  - for every definition reachable from the catalog (list kinds included): its
    `required` list and its `x-kubernetes-*` extensions, on the definition and
    on each property.

Usage:
    pip install kubernetes-validate
    python3 gen_schema_table.py [--defs PATH] [--out PATH]
"""

import argparse
import json
import os
import re
import sys

SCHEMA_VERSION = "v1.33.0-local"

# Definition-name prefix -> k8s-openapi module path.
MODULES = [
    ("io.k8s.api.", "api::"),
    ("io.k8s.apimachinery.pkg.apis.meta.v1.", "apimachinery::pkg::apis::meta::v1::"),
    ("io.k8s.apiextensions-apiserver.", "apiextensions_apiserver::"),
    ("io.k8s.kube-aggregator.", "kube_aggregator::"),
]

# Generic k8s-openapi types: the parameter does not change the schema.
TYPE_OVERRIDES = {
    "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent": "apimachinery::pkg::apis::meta::v1::WatchEvent<k8s_openapi::apimachinery::pkg::apis::meta::v1::Status>",
}

# Extensions that carry no prose and that clients act on.
EXTENSIONS = [
    "x-kubernetes-embedded-resource",
    "x-kubernetes-group-version-kind",
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-list-type",
    "x-kubernetes-map-type",
    "x-kubernetes-patch-merge-key",
    "x-kubernetes-patch-strategy",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-unions",
]

GA_VERSION = re.compile(r"^v[0-9]+$")


def find_defs_file():
    try:
        import kubernetes_validate  # type: ignore
    except ImportError:
        sys.exit("kubernetes-validate is not installed: pip install kubernetes-validate")
    base = os.path.dirname(kubernetes_validate.__file__)
    path = os.path.join(base, "kubernetes-json-schema", SCHEMA_VERSION, "_definitions.json")
    if not os.path.exists(path):
        sys.exit(f"definitions not found at {path}")
    return path


def ref_name(ref):
    prefix = "#/$defs/"
    if not ref.startswith(prefix):
        sys.exit(f"unexpected $ref form: {ref}")
    return ref[len(prefix):]


def rust_type(name):
    if name in TYPE_OVERRIDES:
        return "k8s_openapi::" + TYPE_OVERRIDES[name]
    for prefix, module in MODULES:
        if name.startswith(prefix):
            rest = name[len(prefix):].split(".")
            path = [p.replace("-", "_") for p in rest[:-1]]
            return "k8s_openapi::" + module + "::".join(path + [rest[-1]])
    return None


def is_list_kind(defn):
    """A `<Kind>List`: k8s-openapi has one generic List type for those."""
    kinds = [g["kind"] for g in defn.get("x-kubernetes-group-version-kind", [])]
    items = defn.get("properties", {}).get("items", {})
    return any(k.endswith("List") for k in kinds) and "$ref" in items.get("items", {})


def catalog(defs):
    """Definitions k8s-openapi has a type for, served as kinds (or kinds' lists)."""
    kinds, lists = [], []
    for name in sorted(defs):
        d = defs[name]
        gvks = d.get("x-kubernetes-group-version-kind")
        if not gvks or rust_type(name) is None:
            continue
        if not GA_VERSION.match(name.split(".")[-2]):
            continue
        (lists if is_list_kind(d) else kinds).append(name)
    return kinds, lists


def refs_of(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                yield ref_name(v)
            else:
                yield from refs_of(v)
    elif isinstance(node, list):
        for v in node:
            yield from refs_of(v)


def reachable(defs, roots):
    seen, todo = set(), list(roots)
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        if n not in defs:
            sys.exit(f"unknown definition {n}")
        seen.add(n)
        todo.extend(refs_of(defs[n].get("properties", {})))
    return sorted(seen)


def overlay(defn):
    """The structural facts of one definition as compact JSON."""
    out = {"required": defn.get("required", [])}
    for ext in EXTENSIONS:
        if ext in defn:
            out[ext] = defn[ext]
    props = {}
    for field, prop in sorted(defn.get("properties", {}).items()):
        p = {ext: prop[ext] for ext in EXTENSIONS if ext in prop}
        if p:
            props[field] = p
    if props:
        out["properties"] = props
    return json.dumps(out, sort_keys=True, separators=(",", ":"))


def raw(s):
    if '"#' in s:
        sys.exit("overlay contains the raw-string terminator")
    return 'r#"' + s + '"#'


def render(defs):
    kinds, lists = catalog(defs)
    names = reachable(defs, kinds + lists)
    lines = [
        "// generated by gen_schema_table.py; do not edit",
        f"// source: kubernetes-validate {SCHEMA_VERSION} OpenAPI definitions (structure only)",
        "",
        "use super::schemas::{of, Kind};",
        "",
        "/// Every kind of a generally available group/version that k8s-openapi",
        "/// has a type for: definition name and schema generator.",
        "#[rustfmt::skip]",
        "pub(crate) static KINDS: &[Kind] = &[",
    ]
    for name in kinds:
        lines.append(f"    ({json.dumps(name)}, of::<{rust_type(name)}>),")
    lines.append("];")
    lines.append("")
    lines.append("/// For every definition reachable from the kinds (and their lists):")
    lines.append("/// the `required` list and the `x-kubernetes-*` extensions, as JSON.")
    lines.append("#[rustfmt::skip]")
    lines.append("pub(crate) static OVERLAYS: &[(&str, &str)] = &[")
    for name in names:
        lines.append(f"    ({json.dumps(name)}, {raw(overlay(defs[name]))}),")
    lines.append("];")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--defs", help="path to _definitions.json")
    parser.add_argument(
        "--out",
        default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "schema_table_generated.rs"),
    )
    args = parser.parse_args()
    path = args.defs or find_defs_file()
    with open(path) as f:
        doc = json.load(f)
    defs = doc.get("$defs") or doc.get("definitions")
    if not defs:
        sys.exit(f"{path}: no $defs / definitions")
    with open(args.out, "w") as f:
        f.write(render(defs))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
