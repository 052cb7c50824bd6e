//! Component schemas: which definition describes a served kind (the one
//! place that maps a group/version/kind to a schema), and the definitions
//! themselves with everything they reach.
//!
//! The schemas come from `k8s-openapi`'s `schemars` implementations at run
//! time (names, descriptions, types, formats). Upstream's structural facts
//! that those lack or state differently — `required` lists (k8s-openapi
//! requires every field that is not an `Option` in Rust) and the
//! `x-kubernetes-*` extensions — are laid over them from the table that
//! `gen_schema_table.py` generates from upstream's v1.33 definitions. List
//! kinds have no k8s-openapi type and are built here.
//!
//! Definitions are kept in one neutral form (`$ref` next to a description,
//! refs to `#/components/schemas/`); [`render`] gives one in the OpenAPI v3
//! or v2 form.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::OnceLock;

use schemars::generate::{SchemaGenerator, SchemaSettings};
use schemars::{JsonSchema, Schema};
use serde_json::{json, Value};

use crate::schema_table_generated::{KINDS, OVERLAYS};

/// A definition name and the generator of its schema.
pub type Kind = (&'static str, fn(&mut SchemaGenerator) -> Schema);

/// The schema generator of one k8s-openapi type (used by the table).
pub fn of<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// The body of PATCH requests: the one root that is no kind.
pub(crate) const PATCH_DEFINITION: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
pub(crate) const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub(crate) const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";

const V3_PREFIX: &str = "#/components/schemas/";
const V2_PREFIX: &str = "#/definitions/";

/// The overlay of one definition, parsed when a build needs it (the table
/// is not kept parsed: it would stay in memory for nothing).
fn overlay(name: &str) -> Option<Value> {
    OVERLAYS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, json)| serde_json::from_str(json).expect("overlay table"))
}

/// (group, version, kind) → definition name, from upstream's
/// `x-kubernetes-group-version-kind` of every definition we can build.
fn by_gvk() -> &'static HashMap<(String, String, String), &'static str> {
    static INDEX: OnceLock<HashMap<(String, String, String), &'static str>> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut index = HashMap::new();
        for (name, json) in OVERLAYS.iter().filter(|(n, _)| buildable(n)) {
            let overlay: Value = serde_json::from_str(json).expect("overlay table");
            for gvk in overlay["x-kubernetes-group-version-kind"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let s = |k: &str| gvk[k].as_str().unwrap_or("").to_string();
                index.insert((s("group"), s("version"), s("kind")), *name);
            }
        }
        index
    })
}

fn kind_generator(name: &str) -> Option<fn(&mut SchemaGenerator) -> Schema> {
    KINDS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// The item kind of a list definition we build (`...v1.PodList` → `...v1.Pod`).
fn list_item(name: &str) -> Option<&'static str> {
    let item = name.strip_suffix("List")?;
    KINDS.iter().map(|(n, _)| *n).find(|n| *n == item)
}

fn buildable(name: &str) -> bool {
    kind_generator(name).is_some() || list_item(name).is_some()
}

/// The definition describing a kind, if we have one: the one place that maps
/// a served kind (and its list, `<Kind>List`) to its schema.
pub fn definition_for(group: &str, version: &str, kind: &str) -> Option<&'static str> {
    by_gvk()
        .get(&(group.to_string(), version.to_string(), kind.to_string()))
        .copied()
}

/// Every definition reachable from `roots`, in the neutral form, with the
/// overlay applied. Unknown roots are left out.
pub fn definitions(roots: &BTreeSet<&'static str>) -> BTreeMap<String, Value> {
    let mut generator = SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = "/components/schemas".into();
            s.meta_schema = None;
        })
        .into_generator();
    let mut lists = Vec::new();
    for root in roots {
        if *root == PATCH_DEFINITION {
            of::<k8s_openapi::apimachinery::pkg::apis::meta::v1::Patch>(&mut generator);
        } else if let Some(f) = kind_generator(root) {
            f(&mut generator);
        } else if let Some(item) = list_item(root) {
            kind_generator(item).expect("catalogued")(&mut generator);
            of::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta>(&mut generator);
            lists.push((*root, item));
        }
    }
    let mut defs: BTreeMap<String, Value> = generator.take_definitions(false).into_iter().collect();
    for (list, item) in lists {
        let schema = list_schema(&defs[item], item);
        defs.insert(list.to_string(), schema);
    }
    for (name, schema) in defs.iter_mut() {
        if let Some(overlay) = overlay(name) {
            apply_overlay(schema, &overlay);
        }
    }
    if let Some(q) = defs.get_mut(QUANTITY).and_then(Value::as_object_mut) {
        // Upstream's Quantity is a string (or a number); "int or string"
        // would refuse "0.5".
        q.remove("x-kubernetes-int-or-string");
    }
    defs
}

/// `<Kind>List`: apiVersion, kind, items and list metadata; the type-meta
/// descriptions are the item kind's own.
fn list_schema(item: &Value, item_name: &str) -> Value {
    let short = item_name.rsplit('.').next().unwrap_or(item_name);
    json!({
        "description": format!("{short}List is a list of {short} objects."),
        "type": "object",
        "properties": {
            "apiVersion": item["properties"]["apiVersion"].clone(),
            "kind": item["properties"]["kind"].clone(),
            "items": {
                "description": format!("The {short} objects of the list."),
                "type": "array",
                "items": {"$ref": format!("{V3_PREFIX}{item_name}")},
            },
            "metadata": {
                "description": "Standard list metadata.",
                "$ref": format!("{V3_PREFIX}io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"),
            },
        },
    })
}

fn apply_overlay(schema: &mut Value, overlay: &Value) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    for (k, v) in overlay.as_object().into_iter().flatten() {
        match k.as_str() {
            "required" => {
                if v.as_array().is_some_and(|a| !a.is_empty()) {
                    obj.insert(k.clone(), v.clone());
                } else {
                    obj.remove(k);
                }
            }
            "properties" => {
                for (field, exts) in v.as_object().into_iter().flatten() {
                    let Some(prop) = obj
                        .get_mut("properties")
                        .and_then(|p| p.get_mut(field))
                        .and_then(Value::as_object_mut)
                    else {
                        continue;
                    };
                    for (ek, ev) in exts.as_object().into_iter().flatten() {
                        prop.insert(ek.clone(), ev.clone());
                    }
                }
            }
            _ => {
                obj.insert(k.clone(), v.clone());
            }
        }
    }
}

/// The definitions `schema` refers to (directly).
pub fn refs(schema: &Value, out: &mut BTreeSet<String>) {
    match schema {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => {
                        if let Some(n) = r.strip_prefix(V3_PREFIX) {
                            out.insert(n.to_string());
                        }
                    }
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

/// The names reachable from `roots` within `defs` (roots included).
pub fn reachable(defs: &BTreeMap<String, Value>, roots: &BTreeSet<&str>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<String> = roots.iter().map(|r| r.to_string()).collect();
    while let Some(n) = todo.pop() {
        let Some(schema) = defs.get(&n) else { continue };
        if !seen.insert(n) {
            continue;
        }
        let mut next = BTreeSet::new();
        refs(schema, &mut next);
        todo.extend(next.into_iter().filter(|r| !seen.contains(r)));
    }
    seen
}

/// Which document a schema goes into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    V2,
    V3,
}

/// The definition `name` from `defs`, in the form of the given OpenAPI version.
pub fn render(defs: &BTreeMap<String, Value>, name: &str, flavor: Flavor) -> Option<Value> {
    let mut schema = defs.get(name)?.clone();
    match name {
        INT_OR_STRING => int_or_string(&mut schema, flavor),
        QUANTITY => quantity(&mut schema, flavor),
        _ => rewrite(&mut schema, flavor),
    }
    Some(schema)
}

/// A reference for an operation's schema.
pub fn reference(name: &str, flavor: Flavor) -> Value {
    match flavor {
        Flavor::V3 => json!({"$ref": format!("{V3_PREFIX}{name}")}),
        Flavor::V2 => json!({"$ref": format!("{V2_PREFIX}{name}")}),
    }
}

/// v3: a `$ref` with siblings (a description) becomes `allOf: [{$ref}]`, as
/// upstream writes it (OpenAPI 3.0 ignores a reference's siblings). v2:
/// references point into `#/definitions/`.
fn rewrite(v: &mut Value, flavor: Flavor) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get_mut("$ref") {
                if flavor == Flavor::V2 {
                    if let Some(n) = r.strip_prefix(V3_PREFIX) {
                        *r = format!("{V2_PREFIX}{n}");
                    }
                } else if m.len() > 1 {
                    let r = m.remove("$ref").expect("present");
                    m.insert("allOf".into(), json!([{"$ref": r}]));
                }
            }
            for (k, child) in m.iter_mut() {
                // Property names are data, not schema keywords.
                if k == "properties" {
                    for p in child
                        .as_object_mut()
                        .into_iter()
                        .flat_map(|p| p.values_mut())
                    {
                        rewrite(p, flavor);
                    }
                } else if k != "x-kubernetes-group-version-kind" {
                    rewrite(child, flavor);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| rewrite(x, flavor)),
        _ => {}
    }
}

/// Upstream's shapes: v2 `string` with format `int-or-string`, v3 one of
/// integer and string.
fn int_or_string(schema: &mut Value, flavor: Flavor) {
    if let Some(m) = schema.as_object_mut() {
        m.insert("format".into(), "int-or-string".into());
    }
    string_in_v2(schema, flavor, &["integer", "string"]);
}

/// Upstream's shapes: v2 `string`, v3 one of string and number.
fn quantity(schema: &mut Value, flavor: Flavor) {
    string_in_v2(schema, flavor, &["string", "number"]);
}

/// A value of several JSON types: v2 can only say `string`; v3 says
/// `oneOf` the types.
fn string_in_v2(schema: &mut Value, flavor: Flavor, v3_types: &[&str]) {
    let Some(m) = schema.as_object_mut() else {
        return;
    };
    match flavor {
        Flavor::V2 => {
            m.insert("type".into(), "string".into());
        }
        Flavor::V3 => {
            let one_of: Vec<Value> = v3_types.iter().map(|t| json!({"type": t})).collect();
            m.insert("oneOf".into(), Value::Array(one_of));
        }
    }
}
