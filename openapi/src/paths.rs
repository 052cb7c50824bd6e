//! The paths and operations of the served resources, in a form both
//! OpenAPI versions render ([`crate::v2`], [`crate::v3`]): each operation
//! with its `x-kubernetes-action`, `x-kubernetes-group-version-kind`,
//! parameters (kubectl reads the `fieldValidation` parameter of PATCH to
//! decide that the server validates fields itself) and the definitions of
//! its request and response bodies.

use std::collections::BTreeSet;

use crate::discovery::ResourceDescriptor;
use crate::schemas::{definition_for, DELETE_OPTIONS, PATCH_DEFINITION, STATUS};

/// A query or path parameter.
#[derive(Clone, Debug)]
pub struct Param {
    pub name: &'static str,
    pub path: bool,
    /// `string`, `integer` or `boolean`.
    pub ty: &'static str,
}

/// One operation of a path.
#[derive(Clone, Debug)]
pub struct Operation {
    /// Lower-case HTTP method.
    pub method: &'static str,
    pub action: &'static str,
    pub id: String,
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub params: Vec<Param>,
    /// The request body's definition and media types.
    pub body: Option<(&'static str, &'static [&'static str])>,
    pub body_required: bool,
    /// The response body, with the status codes it comes with.
    pub response: Option<Response>,
    pub codes: &'static [&'static str],
}

/// What an operation answers with.
#[derive(Clone, Copy, Debug)]
pub enum Response {
    /// An object of this definition.
    Def(&'static str),
    /// A string (logs, streams) in this media type.
    Text(&'static str),
}

/// Operations by path, in insertion order.
pub type Paths = Vec<(String, Vec<Operation>)>;

pub const JSON: &str = "application/json";
const RESPONSE_TYPES: &[&str] = &[JSON, "application/vnd.kubernetes.protobuf"];
const BODY_TYPES: &[&str] = &[JSON, "application/vnd.kubernetes.protobuf"];
const PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];

/// The media types responses are offered in.
pub fn response_types() -> &'static [&'static str] {
    RESPONSE_TYPES
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

/// `coordination.k8s.io` → `Coordination`, `""` → `Core`, as in upstream's
/// operation ids.
fn group_word(group: &str) -> String {
    if group.is_empty() {
        return "Core".into();
    }
    group
        .trim_end_matches(".k8s.io")
        .split(['.', '-'])
        .map(capitalize)
        .collect()
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

const fn p(name: &'static str, ty: &'static str) -> Param {
    Param {
        name,
        path: false,
        ty,
    }
}

const PRETTY: Param = p("pretty", "string");
const WRITE: &[Param] = &[
    p("dryRun", "string"),
    p("fieldManager", "string"),
    p("fieldValidation", "string"),
];
const LIST: &[Param] = &[
    p("allowWatchBookmarks", "boolean"),
    p("continue", "string"),
    p("fieldSelector", "string"),
    p("labelSelector", "string"),
    p("limit", "integer"),
    p("resourceVersion", "string"),
    p("resourceVersionMatch", "string"),
    p("sendInitialEvents", "boolean"),
    p("timeoutSeconds", "integer"),
    p("watch", "boolean"),
];
const FORCE: &[Param] = &[p("force", "boolean")];
const DELETE: &[Param] = &[
    p("dryRun", "string"),
    p("gracePeriodSeconds", "integer"),
    p("propagationPolicy", "string"),
];

struct Builder<'a> {
    r: &'a ResourceDescriptor,
    path_params: Vec<&'static str>,
    /// `Namespaced` for namespaced resources (upstream's operation ids).
    scope: &'static str,
}

impl Builder<'_> {
    /// One operation; its id is `{verb}{CoreV1}{infix}{Namespaced}{Kind}{suffix}`
    /// as upstream's (`deleteCoreV1CollectionNamespacedPod`).
    fn op(
        &self,
        (method, action): (&'static str, &'static str),
        (verb, infix, suffix): (&str, &str, &str),
        (group, version, kind): (&'static str, &'static str, &'static str),
        query: &[&[Param]],
        name: bool,
    ) -> Operation {
        let mut params: Vec<Param> = Vec::new();
        if name {
            params.push(Param {
                name: "name",
                path: true,
                ty: "string",
            });
        }
        params.extend(self.path_params.iter().map(|n| Param {
            name: n,
            path: true,
            ty: "string",
        }));
        params.push(PRETTY);
        for q in query {
            params.extend_from_slice(q);
        }
        let def = definition_for(group, version, kind);
        let obj = def.map(Response::Def);
        let list = definition_for(group, version, &format!("{kind}List")).map(Response::Def);
        let status = Some(Response::Def(STATUS));
        let delete_body = Some((DELETE_OPTIONS, BODY_TYPES));
        let (body, body_required, response, codes): (_, _, _, &[&str]) = match action {
            "list" => (None, false, list, &["200"]),
            "get" => (None, false, obj, &["200"]),
            "post" => (
                def.map(|d| (d, BODY_TYPES)),
                true,
                obj,
                &["200", "201", "202"],
            ),
            "put" => (def.map(|d| (d, BODY_TYPES)), true, obj, &["200", "201"]),
            "patch" => (
                Some((PATCH_DEFINITION, PATCH_TYPES)),
                true,
                obj,
                &["200", "201"],
            ),
            "delete" => (delete_body, false, status, &["200", "202"]),
            "deletecollection" => (delete_body, false, status, &["200"]),
            _ => (None, false, Some(Response::Text("*/*")), &["200"]),
        };
        Operation {
            method,
            action,
            id: format!(
                "{verb}{}{infix}{}{}{suffix}",
                self.gv_word(),
                self.scope,
                self.r.kind
            ),
            group,
            version,
            kind,
            params,
            body,
            body_required,
            response,
            codes,
        }
    }
}

/// The paths of one group/version's resources.
pub fn group_version(resources: &[ResourceDescriptor], group: &str, version: &str) -> Paths {
    let mut out: Paths = Vec::new();
    let prefix = gv_path(group, version);
    for r in resources
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        resource_paths(r, &prefix, &mut out);
    }
    out
}

fn resource_paths(r: &ResourceDescriptor, prefix: &str, out: &mut Paths) {
    let has = |v: &str| r.verbs.contains(&v);
    let b = Builder {
        r,
        path_params: if r.namespaced {
            vec!["namespace"]
        } else {
            vec![]
        },
        scope: if r.namespaced { "Namespaced" } else { "" },
    };
    let own = (r.group, r.version, r.kind);
    let collection = if r.namespaced {
        format!("{prefix}/namespaces/{{namespace}}/{}", r.resource)
    } else {
        format!("{prefix}/{}", r.resource)
    };
    let mut ops = Vec::new();
    if has("list") {
        ops.push(b.op(("get", "list"), ("list", "", ""), own, &[LIST], false));
    }
    if has("create") {
        ops.push(b.op(("post", "post"), ("create", "", ""), own, &[WRITE], false));
    }
    if has("deletecollection") {
        let action = ("delete", "deletecollection");
        ops.push(b.op(
            action,
            ("delete", "Collection", ""),
            own,
            &[LIST, DELETE],
            false,
        ));
    }
    push(out, collection.clone(), ops);
    if r.namespaced && has("list") {
        let all = Builder {
            r,
            path_params: vec![],
            scope: "",
        };
        let id = ("list", "", "ForAllNamespaces");
        let op = all.op(("get", "list"), id, own, &[LIST], false);
        push(out, format!("{prefix}/{}", r.resource), vec![op]);
    }
    let item = format!("{collection}/{{name}}");
    let mut ops = Vec::new();
    if has("get") {
        ops.push(b.op(("get", "get"), ("read", "", ""), own, &[], true));
    }
    if has("update") {
        ops.push(b.op(("put", "put"), ("replace", "", ""), own, &[WRITE], true));
    }
    if has("patch") {
        ops.push(b.op(
            ("patch", "patch"),
            ("patch", "", ""),
            own,
            &[WRITE, FORCE],
            true,
        ));
    }
    if has("delete") {
        ops.push(b.op(
            ("delete", "delete"),
            ("delete", "", ""),
            own,
            &[DELETE],
            true,
        ));
    }
    push(out, item.clone(), ops);
    for s in r.subresources {
        let gvk = (s.group, s.version, s.kind);
        let suffix = capitalize(s.name);
        // exec, attach, portforward, proxy: streams, upstream's "connect".
        let connect = s.kind.ends_with("Options");
        let mut ops = Vec::new();
        for verb in s.verbs {
            let (method, action, word, infix, query): (_, _, _, _, &[&[Param]]) =
                match (*verb, connect) {
                    ("get", true) => ("get", "connect", "connect", "Get", &[]),
                    ("create", true) => ("post", "connect", "connect", "Post", &[]),
                    ("get", false) => ("get", "get", "read", "", &[]),
                    ("update", false) => ("put", "put", "replace", "", &[WRITE]),
                    ("patch", false) => ("patch", "patch", "patch", "", &[WRITE, FORCE]),
                    ("create", false) => ("post", "post", "create", "", &[WRITE]),
                    _ => continue,
                };
            let mut op = b.op((method, action), (word, infix, &suffix), gvk, query, true);
            if s.name == "log" {
                op.response = Some(Response::Text("text/plain"));
            }
            ops.push(op);
        }
        push(out, format!("{item}/{}", s.name), ops);
    }
}

impl Builder<'_> {
    /// `CoreV1`, `AppsV1`: the group/version part of operation ids.
    fn gv_word(&self) -> String {
        group_word(self.r.group) + &capitalize(self.r.version)
    }
}

fn push(out: &mut Paths, path: String, ops: Vec<Operation>) {
    if !ops.is_empty() {
        out.push((path, ops));
    }
}

/// The definitions the operations of `paths` name.
pub fn roots(paths: &Paths) -> BTreeSet<&'static str> {
    let mut out = BTreeSet::new();
    for op in paths.iter().flat_map(|(_, ops)| ops) {
        out.extend(op.body.map(|(d, _)| d));
        if let Some(Response::Def(d)) = op.response {
            out.insert(d);
        }
        // The kind itself, also where no operation returns it (explain
        // finds schemas by the operations' group/version/kind).
        out.extend(definition_for(op.group, op.version, op.kind));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_words_follow_upstream_operation_ids() {
        assert_eq!(group_word(""), "Core");
        assert_eq!(group_word("apps"), "Apps");
        assert_eq!(group_word("coordination.k8s.io"), "Coordination");
        assert_eq!(group_word("rbac.authorization.k8s.io"), "RbacAuthorization");
    }
}
