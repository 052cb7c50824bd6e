"""Loading upstream's v1.33 OpenAPI definitions for the table generators
(openapi/src/gen_schema_table.py, apiserver/src/patch/gen_patch_schema.py).

The definitions come from the PyPI package `kubernetes-validate`
(kubernetes-json-schema/v1.33.0-local/_definitions.json). This module only
finds and reads them, and gives each generator the same command line:
`--defs PATH` (default: the installed package's file) and `--out PATH`
(default: the named file next to the generator)."""

import argparse
import json
import os
import sys

SCHEMA_VERSION = "v1.33.0-local"


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


def run(description, generator_file, default_out, render):
    """Parses the command line, loads the definitions, and writes
    `render(defs)` to the output file."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--defs", help="path to _definitions.json")
    parser.add_argument(
        "--out",
        default=os.path.join(os.path.dirname(os.path.abspath(generator_file)), default_out),
    )
    args = parser.parse_args()
    path = args.defs or find_defs_file()
    with open(path) as f:
        doc = json.load(f)
    defs = doc.get("$defs") or doc.get("definitions")
    if not defs:
        sys.exit(f"{path}: no $defs / definitions")
    out = render(defs)
    with open(args.out, "w") as f:
        f.write(out)
    print(f"wrote {args.out}")
