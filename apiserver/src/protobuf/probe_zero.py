#!/usr/bin/env python3
"""Ask a real kubectl which zero-valued fields Go's JSON emits; write zero_facts.txt.

Why: Go writes every non-pointer field to protobuf, even when empty, but its JSON omits the
empty ones tagged `omitempty`.  A decoded body should look like the JSON the same client
would have sent, so the codec must know, per scalar field, whether Go's JSON keeps a zero
value (pointer field or no omitempty) or drops it.  Neither k8s-pb nor k8s-openapi records
that, but kubectl can show it: it decodes protobuf responses into Go structs and prints them
with Go's JSON encoder.

How: a throwaway HTTP server on 127.0.0.1 answers kubectl's typed requests
(`kubectl create ... -o json`, `kubectl events -o json`) with a protobuf object in which every
field is present with its zero value, recursively.  Each scalar field that survives into
kubectl's JSON output is "keep", each that vanishes is "omit".  Facts are merged into
zero_facts.txt (later runs override earlier ones); then run gen_schema.py again.

Usage:
    python3 gen_schema.py --json /tmp/schema.json
    python3 probe_zero.py /tmp/schema.json [--kubectl /usr/bin/kubectl]
    python3 gen_schema.py
"""

import argparse
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
SCALARS = {"Str", "Bytes", "Bool", "I32", "I64"}

# (kubectl arguments, apiVersion, kind of the object the server answers with, list?)
PROBES = [
    (["create", "namespace", "x"], "v1", "Namespace"),
    (["create", "configmap", "x"], "v1", "ConfigMap"),
    (["create", "secret", "generic", "x"], "v1", "Secret"),
    (["create", "serviceaccount", "x"], "v1", "ServiceAccount"),
    (["create", "quota", "x"], "v1", "ResourceQuota"),
    (["create", "service", "clusterip", "x", "--tcp=1:1"], "v1", "Service"),
    (["create", "deployment", "x", "--image=i"], "apps/v1", "Deployment"),
    (["create", "job", "x", "--image=i"], "batch/v1", "Job"),
    (["create", "cronjob", "x", "--image=i", "--schedule=* * * * *"], "batch/v1", "CronJob"),
    (["create", "pdb", "x", "--selector=a=b", "--min-available=1"], "policy/v1",
     "PodDisruptionBudget"),
    (["events"], "v1", "EventList"),
]


def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def field_bytes(num, payload):
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def field_varint(num, value):
    return varint(num << 3) + varint(value)


class Zero:
    """Builds all-zero (or all-one) messages from the schema dump of gen_schema.py."""

    def __init__(self, schema, ones=False):
        self.msgs = schema["messages"]
        # The all-one variant tells which fields this kubectl knows at all: a field newer
        # than kubectl vanishes from its output whatever its value, and gets no verdict.
        self.str = b"x" if ones else b""
        self.num = 1 if ones else 0

    def message(self, idx, stack=()):
        m = self.msgs[idx]
        special = m["special"]
        if special in ("Time", "MicroTime", "RawExtension"):
            return b""
        if special == "IntOrString":
            return field_varint(1, 0) + field_varint(2, 0) + field_bytes(3, b"")
        if special == "Quantity":
            return field_bytes(1, b"0")
        if special == "FieldsV1":
            return field_bytes(1, b"{}")
        if special == "Duration":
            return field_varint(1, 0)
        if special == "StringList":
            return field_bytes(1, b"")
        if idx in stack:
            return b""
        out = b""
        for f in m["fields"]:
            kind = f["kind"]
            if m["name"] == "ListMeta" and f["json"] == "continue" and self.num:
                continue  # a continue token would make kubectl page forever
            if kind in ("Str", "Bytes"):
                out += field_bytes(f["num"], self.str)
            elif kind in ("Bool", "I32", "I64"):
                out += field_varint(f["num"], self.num)
            elif kind == "Msg":
                out += field_bytes(f["num"], self.message(f["ref"], stack + (idx,)))
            elif kind == "MapStr" or kind == "MapBytes":
                out += field_bytes(f["num"], field_bytes(1, b"k") + field_bytes(2, b""))
            elif kind == "MapMsg":
                value = self.message(f["ref"], stack + (idx,))
                out += field_bytes(f["num"], field_bytes(1, b"k") + field_bytes(2, value))
        return out

    def verdicts(self, idx, obj, facts, stack=()):
        """Record, per scalar field, whether it is in kubectl's JSON `obj` for message idx."""
        m = self.msgs[idx]
        if m["special"] != "None" or idx in stack or not isinstance(obj, dict):
            return
        name = f"{m['module']}.{m['name']}"
        for f in m["fields"]:
            kind = f["kind"]
            if f["inline"]:
                self.verdicts(f["ref"], obj, facts, stack + (idx,))
            elif kind in SCALARS and not f["rep"]:
                facts[f"{name}.{f['json']}"] = f["json"] in obj
            elif kind == "Msg":
                sub = obj.get(f["json"])
                if f["rep"] and isinstance(sub, list) and sub:
                    sub = sub[0]
                self.verdicts(f["ref"], sub, facts, stack + (idx,))
            elif kind == "MapMsg":
                sub = obj.get(f["json"])
                if isinstance(sub, dict):
                    self.verdicts(f["ref"], sub.get("k"), facts, stack + (idx,))


def envelope(api_version, kind, raw):
    type_meta = field_bytes(1, api_version.encode()) + field_bytes(2, kind.encode())
    return b"k8s\0" + field_bytes(1, type_meta) + field_bytes(2, raw) + field_bytes(
        3, b"") + field_bytes(4, b"")


def serve(body_for):
    """Start a loopback server; body_for(method, path) -> (status, content type, bytes)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            status, ctype, body = body_for(self.command, self.path.split("?")[0])
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = answer

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("schema", help="JSON written by gen_schema.py --json")
    ap.add_argument("--kubectl", default="kubectl")
    args = ap.parse_args()
    schema = json.load(open(args.schema, encoding="utf-8"))
    variants = {"zero": Zero(schema), "one": Zero(schema, ones=True)}
    kinds = {(av, k): idx for av, k, idx in schema["kinds"]}
    state = {}

    def body_for(method, path):
        if method == "GET" and path in ("/api", "/apis") or path.startswith("/version"):
            return 404, "application/json", b"{}"
        av, kind = state["target"]
        raw = variants[state["variant"]].message(kinds[(av, kind)])
        return 201, "application/vnd.kubernetes.protobuf", envelope(av, kind, raw)

    server = serve(body_for)
    facts = {}
    with tempfile.TemporaryDirectory() as home:
        kubeconfig = os.path.join(home, "config")
        with open(kubeconfig, "w", encoding="utf-8") as fh:
            fh.write(
                "apiVersion: v1\nkind: Config\nclusters:\n- cluster: {server: "
                f"'http://127.0.0.1:{server.server_address[1]}'}}\n  name: c\ncontexts:\n"
                "- context: {cluster: c, user: u, namespace: default}\n  name: x\n"
                "current-context: x\nusers:\n- name: u\n  user: {token: t}\n"
            )
        env = dict(os.environ, HOME=home, KUBECONFIG=kubeconfig)
        for argv, av, kind in PROBES:
            seen = {}
            for variant in ("zero", "one"):
                state["target"], state["variant"] = (av, kind), variant
                proc = subprocess.run([args.kubectl, *argv, "-o", "json"], env=env,
                                      capture_output=True, text=True, timeout=60, check=False)
                try:
                    obj = json.loads(proc.stdout)
                except json.JSONDecodeError:
                    sys.exit(f"probe_zero: kubectl {' '.join(argv)} printed no JSON:\n"
                             f"{proc.stdout}{proc.stderr}")
                seen[variant] = {}
                variants[variant].verdicts(kinds[(av, kind)], obj, seen[variant])
            for key, present in seen["zero"].items():
                if seen["one"].get(key):
                    facts[key] = "keep" if present else "omit"
            print(f"probe_zero: {kind}: {len(facts)} facts so far", file=sys.stderr)
    server.shutdown()

    path = os.path.join(HERE, "zero_facts.txt")
    old = {}
    if os.path.exists(path):
        for line in open(path, encoding="utf-8"):
            if line.strip() and not line.startswith("#"):
                key, verdict = line.split()
                old[key] = verdict
    old.update(facts)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("# generated by probe_zero.py: does Go's JSON keep a zero value of this field?\n")
        for key in sorted(old):
            fh.write(f"{key} {old[key]}\n")
    print(f"probe_zero: wrote {len(old)} facts to {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
