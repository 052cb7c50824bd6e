#!/usr/bin/env python3
"""Generate schema_gen.rs, the protobuf schema table used by the protobuf codec.

Facts come from two crates in the local cargo registry (run `cargo fetch` in a crate that
depends on them first):

* k8s-pb (prost-generated Kubernetes messages): message names, field numbers, wire kinds,
  repeated/map shape, message references, and the apiVersion/kind of each resource.
* k8s-openapi (serde code generated from the Kubernetes OpenAPI): the exact JSON name of every
  field (snake_case -> camelCase is lossy: podIP, hostIPs, DaemonEndpoint's "Port"), whether a
  field is required (non-optional), and which proto fields are Go `json:",inline"` embeddings.

Further inputs next to this script say which scalar fields Go emits in JSON when they hold a
zero value (pointer or non-omitempty fields): zero_facts.txt, measured by probe_zero.py with a
real kubectl, and zero_facts_curated.txt, kept by hand for types kubectl never prints.  Fields
in neither fall back to a heuristic (see heuristic_keep).

Usage (from this directory; k8s-pb 0.9.0 and k8s-openapi 0.29.0 must be in the registry,
e.g. after `cargo fetch` in the apiserver crate, which has both among its dependencies):
    python3 gen_schema.py [--registry DIR] [--out schema_gen.rs] [--json schema.json]

To add a kind: extend ROOT_KINDS (or META_KINDS / SUBRESOURCE_KINDS), rerun, and if kubectl
can print the kind add it to probe_zero.py's PROBES and refresh the facts:
    python3 gen_schema.py --json /tmp/schema.json
    python3 probe_zero.py /tmp/schema.json
    python3 gen_schema.py
The script exits with an error instead of guessing when a field has no JSON name.
"""

import argparse
import glob
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# Root kinds: (k8s-pb module, message).  Their List types are added automatically.
ROOT_KINDS = [
    ("api.core.v1", m)
    for m in [
        "Pod", "PodTemplate", "ReplicationController", "Service", "Namespace", "Node",
        "Endpoints", "ConfigMap", "Secret", "ServiceAccount", "LimitRange", "ResourceQuota",
        "Event", "ComponentStatus", "Binding",
    ]
] + [
    ("api.events.v1", "Event"),
    ("api.apps.v1", "Deployment"),
    ("api.apps.v1", "ReplicaSet"),
    ("api.apps.v1", "DaemonSet"),
    ("api.apps.v1", "StatefulSet"),
    ("api.apps.v1", "ControllerRevision"),
    ("api.batch.v1", "Job"),
    ("api.batch.v1", "CronJob"),
    ("api.autoscaling.v1", "Scale"),
    ("api.policy.v1", "Eviction"),
    ("api.policy.v1", "PodDisruptionBudget"),
    ("api.discovery.v1", "EndpointSlice"),
    ("api.authorization.v1", "SelfSubjectAccessReview"),
    ("api.authorization.v1", "SelfSubjectRulesReview"),
]

META = "apimachinery.pkg.apis.meta.v1"

# Subresource kinds that k8s-pb gives no Resource impl: (module, message) -> (apiVersion, kind).
SUBRESOURCE_KINDS = {
    ("api.autoscaling.v1", "Scale"): ("autoscaling/v1", "Scale"),
    ("api.policy.v1", "Eviction"): ("policy/v1", "Eviction"),
}

# meta/v1 kinds that have no Resource impl in k8s-pb.  apiVersion "" means "any": Kubernetes
# registers DeleteOptions and WatchEvent into every group version; Status is served as "v1".
META_KINDS = [("v1", "Status"), ("", "DeleteOptions"), ("", "WatchEvent")]

# Messages whose JSON form is not a plain object.  Value: the Special variant in schema.rs.
SPECIAL = {
    (META, "Time"): "Time",
    (META, "MicroTime"): "MicroTime",
    (META, "Duration"): "Duration",
    (META, "FieldsV1"): "FieldsV1",
    (META, "Verbs"): "StringList",
    ("apimachinery.pkg.util.intstr", "IntOrString"): "IntOrString",
    ("apimachinery.pkg.api.resource", "Quantity"): "Quantity",
    ("apimachinery.pkg.runtime", "RawExtension"): "RawExtension",
    ("api.authorization.v1", "ExtraValue"): "StringList",
    ("api.authentication.v1", "ExtraValue"): "StringList",
}

# Messages k8s-openapi models as something other than a struct: {norm name: (json, required)}.
JSON_OVERRIDES = {
    (META, "WatchEvent"): {"type": ("type", True), "object": ("object", True)},
}

SCALARS = {
    "string": "Str",
    'bytes = "vec"': "Bytes",
    "bool": "Bool",
    "int32": "I32",
    "int64": "I64",
    "double": "F64",  # no served kind has one; build() refuses it until the codec does
}
MAP_VALUES = {"string": "MapStr", "bytes": "MapBytes"}


def find_crate(registry, name):
    hits = sorted(glob.glob(os.path.join(registry, "*", name)))
    if not hits:
        sys.exit(f"gen_schema: {name} not found under {registry}; run `cargo fetch` first")
    return hits[-1]


def strip_comments(text):
    return "\n".join(line for line in text.split("\n") if not line.strip().startswith("//"))


def split_top(s, sep=","):
    """Split on sep at angle-bracket depth 0."""
    out, depth, cur = [], 0, ""
    for ch in s:
        if ch == "<":
            depth += 1
        elif ch == ">":
            depth -= 1
        if ch == sep and depth == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    out.append(cur)
    return [p.strip() for p in out]


def unwrap(ty):
    """Strip Option<>, Vec<>, Box<> wrappers; return the inner type path."""
    ty = re.sub(r"\s", "", ty).replace(",>", ">")
    changed = True
    while changed:
        changed = False
        for w in ("::core::option::Option<", "::prost::alloc::vec::Vec<",
                  "::prost::alloc::boxed::Box<"):
            if ty.startswith(w) and ty.endswith(">"):
                ty = ty[len(w):-1]
                changed = True
    return ty


def resolve(module, path):
    """Resolve a Rust type path used inside `module` to (module, name)."""
    parts = path.split("::")
    if parts[0] == "crate":
        return ".".join(parts[1:-1]), parts[-1]
    mod = module.split(".")
    while parts and parts[0] == "super":
        mod.pop()
        parts.pop(0)
    return ".".join(mod + parts[:-1]), parts[-1]


def parse_k8s_pb(root):
    """Return ({(module, name): [field dict]}, {(module, name): (apiVersion, kind)})."""
    messages, resources = {}, {}
    field_re = re.compile(
        r"#\[prost\((?P<attr>[^\]]*)\)\]\s*pub (?:r#)?(?P<name>\w+):\s*(?P<ty>.*?),\s*(?=#\[|$)",
        re.S,
    )
    for path in glob.glob(os.path.join(root, "src", "**", "mod.rs"), recursive=True):
        rel = os.path.relpath(os.path.dirname(path), os.path.join(root, "src"))
        module = rel.replace(os.sep, ".")
        text = strip_comments(open(path, encoding="utf-8").read())
        for m in re.finditer(r"pub struct (\w+) \{\n(.*?)\n\}", text, re.S):
            name, body = m.group(1), m.group(2).strip()
            fields = []
            for fm in field_re.finditer(body):
                attr = fm.group("attr")
                tag = int(re.search(r'tag = "(\d+)"', attr).group(1))
                f = {"name": fm.group("name"), "num": tag, "rep": False}
                mm = re.match(r'btree_map = "string, (\w+)"', attr)
                if mm:
                    vt = mm.group(1)
                    if vt == "message":
                        ty = re.sub(r"\s", "", fm.group("ty"))
                        prefix = "::prost::alloc::collections::BTreeMap<"
                        assert ty.startswith(prefix) and ty.endswith(">"), ty
                        inner = [p for p in split_top(ty[len(prefix):-1]) if p][1]
                        f["kind"] = "MapMsg"
                        f["ref"] = resolve(module, unwrap(inner))
                    else:
                        f["kind"] = MAP_VALUES[vt]
                else:
                    head = attr.split(",")[0].strip()
                    f["rep"] = "repeated" in attr
                    if head == "message":
                        f["kind"] = "Msg"
                        f["ref"] = resolve(module, unwrap(fm.group("ty")))
                    elif head in SCALARS:
                        f["kind"] = SCALARS[head]
                    else:
                        sys.exit(f"gen_schema: unhandled prost attribute {attr!r} in {name}")
                fields.append(f)
            messages[(module, name)] = sorted(fields, key=lambda f: f["num"])
        for m in re.finditer(r"impl crate::Resource for (\w+) \{(.*?)\n\}", text, re.S):
            av = re.search(r'API_VERSION: &\'static str = "([^"]*)"', m.group(2)).group(1)
            kind = re.search(r'KIND: &\'static str = "([^"]*)"', m.group(2)).group(1)
            resources[(module, m.group(1))] = (av, kind)
    return messages, resources


def parse_k8s_openapi(root):
    """Return {(module, lowercased name): {norm field: (json name, required)}}.

    All Kubernetes versions the crate ships are merged: JSON names never change, and the
    union covers fields that k8s-pb knows but an older k8s-openapi module does not.
    """
    defs = {}
    versions = sorted(d for d in os.listdir(os.path.join(root, "src")) if d.startswith("v1_"))
    for ver in versions:
        for path in glob.glob(os.path.join(root, "src", ver, "**", "*.rs"), recursive=True):
            text = open(path, encoding="utf-8").read()
            m = re.match(r"// Generated from definition io\.k8s\.([\w.]+)\.(\w+)\n", text)
            if not m:
                continue
            key = (m.group(1), m.group(2).lower())
            sm = re.search(r"pub struct \w+ \{\n(.*?)\n\}", text, re.S)
            if not sm:
                continue  # newtypes such as Quantity(String) are handled as specials
            required = {}
            for fm in re.finditer(r"^    pub (?:r#)?(\w+): (.*),$", sm.group(1), re.M):
                required[fm.group(1)] = not fm.group(2).startswith("Option<")
            entry = defs.setdefault(key, {})
            for jm in re.finditer(r'"([^"]+)" => Field::Key_(\w+?)_?,', text):
                rust = jm.group(2)
                rust = rust if rust in required else rust + "_"
                norm = jm.group(1).lower().replace("_", "")
                req = required.get(jm.group(2), required.get(rust, False))
                if norm not in entry or req:
                    entry[norm] = (jm.group(1), req)
    return defs


def norm(name):
    return name.lower().replace("_", "")


def load_zero_facts():
    """Zero-value facts, `<module>.<Message>.<jsonName> keep|omit` per line.

    zero_facts_curated.txt is kept by hand for types no kubectl command prints;
    zero_facts.txt is measured by probe_zero.py and wins where both have a field.
    """
    facts = {}
    for name in ("zero_facts_curated.txt", "zero_facts.txt"):
        path = os.path.join(HERE, name)
        if not os.path.exists(path):
            continue
        for line in open(path, encoding="utf-8"):
            line = line.strip()
            if line and not line.startswith("#"):
                key, verdict = line.split()
                facts[key] = verdict == "keep"
    return facts


def build(registry):
    pb_root = find_crate(registry, "k8s-pb-0.9.0")
    oa_root = find_crate(registry, "k8s-openapi-0.29.0")
    messages, resources = parse_k8s_pb(pb_root)
    defs = parse_k8s_openapi(oa_root)
    facts = load_zero_facts()

    # Kinds to serve: every root, its List, and meta kinds.
    kinds = []
    for module, name in ROOT_KINDS:
        av, kind = resources.get((module, name)) or SUBRESOURCE_KINDS[(module, name)]
        kinds.append((av, kind, (module, name)))
        if (module, name + "List") in messages:
            kinds.append((av, kind + "List", (module, name + "List")))
    for av, kind in META_KINDS:
        kinds.append((av, kind, (META, kind)))

    # Breadth-first reachability, so indices are stable and roots come first.
    order, index = [], {}

    def visit(key):
        if key not in index:
            if key not in messages:
                sys.exit(f"gen_schema: message {key} not found in k8s-pb")
            index[key] = len(order)
            order.append(key)

    for _, _, key in kinds:
        visit(key)
    # Every special message goes in the table, reachable or not, so each special JSON form
    # the codec implements is exercised by its tests and ready when a new kind needs it.
    for key in SPECIAL:
        if key in messages and key[0] in (META, "apimachinery.pkg.util.intstr",
                                          "apimachinery.pkg.api.resource",
                                          "apimachinery.pkg.runtime"):
            visit(key)
    i = 0
    while i < len(order):
        key = order[i]
        if key not in SPECIAL:
            for f in messages[key]:
                if "ref" in f:
                    visit(f["ref"])
        i += 1

    def json_names(key):
        module, name = key
        oa = defs.get((module, name.lower()))
        if oa is None and name.endswith("List"):
            # k8s-openapi models lists generically (List<T>), so it has no definition for
            # them; every Kubernetes list is {metadata: ListMeta = 1, items: [T] = 2}.
            oa = {"metadata": ("metadata", False), "items": ("items", True)}
        return oa or JSON_OVERRIDES.get(key) or inline_names.get(key, {})

    # Go `json:",inline"` embeddings (Probe.handler, Volume.volumeSource, ...) are separate
    # proto fields, but their members live directly in the parent's JSON object.  Such a
    # field has no JSON name of its own, and the embedded message (which has no OpenAPI
    # definition) takes its JSON names from the parent.
    inline_names, inline_fields = {}, set()
    changed = True
    while changed:
        changed = False
        for key in order:
            if key in SPECIAL:
                continue
            oa = json_names(key)
            for f in messages[key]:
                if (key, f["num"]) in inline_fields or f["kind"] != "Msg" or norm(f["name"]) in oa:
                    continue
                if oa and all(norm(g["name"]) in oa for g in messages[f["ref"]]):
                    inline_fields.add((key, f["num"]))
                    inline_names[f["ref"]] = oa
                    changed = True

    out = []
    stats = {"facts": 0, "heuristic_keep": 0, "heuristic_omit": 0}
    for key in order:
        module, name = key
        special = SPECIAL.get(key, "None")
        oa = json_names(key)
        fields = []
        for f in messages[key]:
            if f["kind"] == "F64":
                sys.exit(f"gen_schema: {module}.{name}.{f['name']} is a double; teach the "
                         "codec (schema.rs Kind) about doubles first")
            fdesc = {"num": f["num"], "kind": f["kind"], "rep": f["rep"], "inline": False}
            if "ref" in f:
                fdesc["ref"] = index[f["ref"]]
            hit = oa.get(norm(f["name"]))
            if special != "None":
                fdesc["json"] = f["name"]
                required = False
            elif (key, f["num"]) in inline_fields:
                fdesc["json"] = f["name"]
                fdesc["inline"] = True
                required = False
            elif hit:
                fdesc["json"], required = hit
            else:
                sys.exit(f"gen_schema: no JSON name for {module}.{name}.{f['name']}")
            # Zero-valued scalars: Go writes every non-pointer field to protobuf, but JSON
            # omits zero values of `omitempty` fields.  Emit a zero on decode only where Go's
            # JSON would (pointer fields, or fields without omitempty).
            keep = False
            if f["kind"] in SCALARS.values() and not f["rep"] and special == "None":
                fact = facts.get(f"{module}.{name}.{fdesc['json']}")
                if fact is not None:
                    keep = fact
                    stats["facts"] += 1
                else:
                    keep = heuristic_keep(f["kind"], required)
                    stats["heuristic_keep" if keep else "heuristic_omit"] += 1
            fdesc["keep"] = keep
            fdesc["required"] = required
            fields.append(fdesc)
        out.append({"module": module, "name": name, "special": special, "fields": fields})
    kind_rows = [(av, kind, index[key]) for av, kind, key in kinds]
    return out, kind_rows, stats


def heuristic_keep(kind, required):
    """Fallback when zero_facts.txt has no verdict for a scalar field.

    Required fields carry no omitempty, so Go emits them even when zero.  For optional
    strings an empty value is almost never meaningful (pointer strings are rare and "" is
    invalid for nearly all of them), so drop it.  Optional ints and bools are often pointers
    (replicas, automountServiceAccountToken) whose explicit zero matters, so keep them.
    """
    if required:
        return True
    return kind not in ("Str", "Bytes")


def short_module(module):
    for prefix in ("api.", "apimachinery.pkg.apis.", "apimachinery.pkg."):
        if module.startswith(prefix):
            return module[len(prefix):]
    return module


def emit_rust(msgs, kinds):
    lines = [
        "// generated by gen_schema.py; do not edit",
        "//",
        "// One entry per protobuf message reachable from the served kinds: fields in field-number",
        "// order as (number, JSON name, wire kind, flags).  Message references are indices into",
        "// MESSAGES.  Formatting is the generator's (rustfmt::skip), so regenerating is stable.",
        "",
        "use super::schema::{f, Kind::*, Msg, Special, INLINE, KEEP_ZERO, REPEATED};",
        "",
        "#[rustfmt::skip]",
        f"pub(super) static MESSAGES: [Msg; {len(msgs)}] = [",
    ]
    for i, m in enumerate(msgs):
        lines.append(f"    // {i}")
        lines.append("    Msg {")
        lines.append(f'        name: "{short_module(m["module"])}.{m["name"]}",')
        lines.append(f"        special: Special::{m['special']},")
        if not m["fields"]:
            lines.append("        fields: &[],")
        else:
            lines.append("        fields: &[")
            for fd in m["fields"]:
                kind = fd["kind"]
                if kind in ("Msg", "MapMsg"):
                    kind = f"{kind}({fd['ref']})"
                flags = [n for n, on in (("REPEATED", fd["rep"]), ("KEEP_ZERO", fd["keep"]),
                                          ("INLINE", fd["inline"])) if on]
                flag = " | ".join(flags) if flags else "0"
                lines.append(f'            f({fd["num"]}, "{fd["json"]}", {kind}, {flag}),')
            lines.append("        ],")
        lines.append("    },")
    lines.append("];")
    lines.append("")
    lines.append("/// (apiVersion, kind, message index); an empty apiVersion matches any group version.")
    lines.append("#[rustfmt::skip]")
    lines.append(f"pub(super) static KINDS: [(&str, &str, u16); {len(kinds)}] = [")
    for av, kind, idx in kinds:
        lines.append(f'    ("{av}", "{kind}", {idx}),')
    lines.append("];")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    cargo_home = os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo"))
    ap.add_argument("--registry", default=os.path.join(cargo_home, "registry", "src"))
    ap.add_argument("--out", default=os.path.join(HERE, "schema_gen.rs"))
    ap.add_argument("--json", help="also dump the schema as JSON (for probe_zero.py)")
    args = ap.parse_args()
    msgs, kinds, stats = build(args.registry)
    with open(args.out, "w", encoding="utf-8") as fh:
        fh.write(emit_rust(msgs, kinds))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"messages": msgs, "kinds": kinds}, fh)
    print(f"gen_schema: {len(msgs)} messages, {len(kinds)} kinds -> {args.out}; zero rules: "
          f"{stats['facts']} from facts, {stats['heuristic_keep']} keep / "
          f"{stats['heuristic_omit']} omit by heuristic", file=sys.stderr)


if __name__ == "__main__":
    main()
