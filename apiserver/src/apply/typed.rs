//! The schema view server-side apply walks objects with (from the generated
//! structural table: list types, list-map keys, map types), and the two
//! walks over typed values: the field set of an object and the comparison of
//! two objects. Pure.

use serde_json::{Map, Value};

use super::fieldset::{self, Set};
use crate::patch::patch_schema::{
    self, definition_at, Elem, ListType, MapType, PatchDef, PatchField, Shape,
};

/// How a node of an object is tracked.
#[derive(Clone, Copy, Debug)]
pub enum Ty {
    /// One value: scalars, atomic lists and maps, untyped lists.
    Leaf,
    /// An object with declared fields; its fields are tracked one by one.
    Struct(&'static PatchDef),
    /// A map with arbitrary keys (`additionalProperties`).
    Map(Elem),
    /// A list of objects identified by key fields.
    ListMap(&'static [&'static str], Elem),
    /// A list of distinct scalars.
    ListSet,
    /// No schema (kinds outside the table): objects are tracked key by
    /// key, everything else is a leaf.
    Unknown,
}

impl Ty {
    /// The type of a served kind's objects.
    pub fn root(api_version: &str, kind: &str) -> Ty {
        patch_schema::root_definition(api_version, kind)
            .map(Ty::Struct)
            .unwrap_or(Ty::Unknown)
    }

    /// The type of the value under map key / field `name`.
    pub fn child(self, name: &str) -> Ty {
        match self {
            Ty::Struct(def) => def.field(name).map(field_ty).unwrap_or(Ty::Leaf),
            Ty::Map(elem) => elem_ty(elem),
            Ty::Unknown => Ty::Unknown,
            _ => Ty::Leaf,
        }
    }

    /// The type of a list's elements.
    pub fn elem(self) -> Ty {
        match self {
            Ty::ListMap(_, elem) => elem_ty(elem),
            _ => Ty::Leaf,
        }
    }

    /// Whether the children of this node are map entries (not declared
    /// fields): each entry's own path is part of the set.
    fn entries_are_members(self) -> bool {
        matches!(self, Ty::Map(_))
    }

    fn is_object(self) -> bool {
        matches!(self, Ty::Struct(_) | Ty::Map(_) | Ty::Unknown)
    }

    fn is_list(self) -> bool {
        matches!(self, Ty::ListMap(..) | Ty::ListSet)
    }
}

fn def_ty(def: &'static PatchDef, map_type: MapType) -> Ty {
    let atomic = match map_type {
        MapType::Atomic => true,
        MapType::Granular => false,
        MapType::Unset => def.atomic,
    };
    if atomic {
        Ty::Leaf
    } else {
        Ty::Struct(def)
    }
}

fn elem_ty(elem: Elem) -> Ty {
    match elem {
        Elem::Def(i) => def_ty(definition_at(i), MapType::Unset),
        Elem::Scalar | Elem::Scalars => Ty::Leaf,
    }
}

fn field_ty(f: &'static PatchField) -> Ty {
    match f.shape {
        Shape::Obj(i) => def_ty(definition_at(i), f.map_type),
        Shape::Opaque => Ty::Leaf,
        Shape::Map(_) if f.map_type == MapType::Atomic => Ty::Leaf,
        Shape::Map(elem) => Ty::Map(elem),
        Shape::List(elem) => match f.list_type {
            ListType::Atomic => Ty::Leaf,
            ListType::Set => Ty::ListSet,
            ListType::Map(keys) => Ty::ListMap(keys, elem),
            // Undeclared: a list with the merge strategy merges by its merge
            // key (or as a set of scalars); any other list is atomic.
            ListType::Unset if f.strategy.merges_lists() => match (&f.merge_key, elem) {
                (Some(k), Elem::Def(_)) => Ty::ListMap(std::slice::from_ref(k), elem),
                (None, Elem::Scalar) => Ty::ListSet,
                _ => Ty::Leaf,
            },
            ListType::Unset => Ty::Leaf,
        },
    }
}

/// The path element of a list element, or an error naming what is wrong.
pub fn item_element(ty: Ty, item: &Value) -> Result<String, String> {
    match ty {
        Ty::ListSet => Ok(fieldset::value(item)),
        Ty::ListMap(keys, _) => {
            let Some(obj) = item.as_object() else {
                return Err("expected an object in a list of objects".into());
            };
            let mut m = Map::new();
            for k in keys {
                match obj.get(*k) {
                    Some(v) if !v.is_null() => {
                        m.insert((*k).to_string(), v.clone());
                    }
                    // Upstream's schema defaults the protocol of ports.
                    _ if *k == "protocol" => {
                        m.insert((*k).to_string(), Value::String("TCP".into()));
                    }
                    _ => {
                        return Err(format!(
                            "associative list with keys has an element that omits key field {k:?} (and doesn't have default value)"
                        ))
                    }
                }
            }
            Ok(fieldset::key(m))
        }
        _ => Err("not a list".into()),
    }
}

/// Element paths of a list, in order; elements without a usable key get an
/// index (only ever seen on objects stored before tracking began).
fn elements(ty: Ty, list: &[Value]) -> Vec<String> {
    list.iter()
        .enumerate()
        .map(|(i, v)| item_element(ty, v).unwrap_or_else(|_| fieldset::index(i)))
        .collect()
}

/// The fields an applied configuration sets: every leaf, every list element,
/// every map entry, and objects given as `{}` or null.
pub fn to_field_set(v: &Value, ty: Ty) -> Result<Set, String> {
    let mut set = Set::new();
    let mut path = Vec::new();
    walk_set(v, ty, &mut path, &mut set)?;
    Ok(set)
}

fn walk_set(v: &Value, ty: Ty, path: &mut Vec<String>, set: &mut Set) -> Result<(), String> {
    match v {
        Value::Object(m) if ty.is_object() => {
            for (k, child) in m {
                let cty = ty.child(k);
                path.push(fieldset::field(k));
                walk_set(child, cty, path, set)?;
                let empty = child.is_null() || child.as_object().is_some_and(|o| o.is_empty());
                if empty || ty.entries_are_members() {
                    set.insert(path);
                }
                path.pop();
            }
        }
        Value::Array(items) if ty.is_list() => {
            let ety = ty.elem();
            let mut seen = std::collections::HashSet::new();
            for item in items {
                let pe = item_element(ty, item)
                    .map_err(|e| format!("{}: {e}", fieldset::display(path)))?;
                if !seen.insert(pe.clone()) {
                    return Err(format!(
                        "{}: duplicate entries for key {}",
                        fieldset::display(path),
                        fieldset::display(std::slice::from_ref(&pe)).trim_start_matches('.')
                    ));
                }
                path.push(pe);
                set.insert(path);
                walk_set(item, ety, path, set)?;
                path.pop();
            }
        }
        _ => {
            if !path.is_empty() {
                set.insert(path);
            }
        }
    }
    Ok(())
}

/// What changed between two objects.
#[derive(Debug, Default, PartialEq)]
pub struct Comparison {
    pub added: Set,
    pub modified: Set,
    pub removed: Set,
}

impl Comparison {
    /// Added or modified paths.
    pub fn changed(&self) -> Set {
        self.added.union(&self.modified)
    }

    pub fn strip(&mut self, f: impl Fn(Set) -> Set) {
        self.added = f(std::mem::take(&mut self.added));
        self.modified = f(std::mem::take(&mut self.modified));
        self.removed = f(std::mem::take(&mut self.removed));
    }
}

/// Compares `old` (absent: nothing) with `new`. Objects and list elements
/// that appear are themselves added (the `.` of their entry); a leaf that
/// differs is modified; whatever disappears is removed with all below it.
pub fn compare(old: Option<&Value>, new: &Value, ty: Ty) -> Comparison {
    let mut c = Comparison::default();
    let mut path = Vec::new();
    walk_compare(old, Some(new), ty, &mut path, &mut c);
    c
}

fn is_empty_obj(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        _ => false,
    }
}

fn walk_compare(
    old: Option<&Value>,
    new: Option<&Value>,
    ty: Ty,
    path: &mut Vec<String>,
    c: &mut Comparison,
) {
    let old = old.filter(|v| !v.is_null());
    let new = new.filter(|v| !v.is_null());
    let structured_obj = ty.is_object()
        && old.is_none_or(Value::is_object)
        && new.is_none_or(Value::is_object)
        && !(is_empty_obj(old) && is_empty_obj(new));
    let structured_list =
        ty.is_list() && old.is_none_or(Value::is_array) && new.is_none_or(Value::is_array);
    if structured_obj {
        if !path.is_empty() {
            match (old, new) {
                (None, Some(_)) => c.added.insert(path),
                (Some(_), None) => c.removed.insert(path),
                _ => {}
            }
        }
        let empty = Map::new();
        let om = old.and_then(Value::as_object).unwrap_or(&empty);
        let nm = new.and_then(Value::as_object).unwrap_or(&empty);
        for (k, nv) in nm {
            path.push(fieldset::field(k));
            walk_compare(om.get(k), Some(nv), ty.child(k), path, c);
            path.pop();
        }
        for (k, ov) in om {
            if !nm.contains_key(k) {
                path.push(fieldset::field(k));
                walk_compare(Some(ov), None, ty.child(k), path, c);
                path.pop();
            }
        }
        return;
    }
    if structured_list {
        let empty = Vec::new();
        let ol = old.and_then(Value::as_array).unwrap_or(&empty);
        let nl = new.and_then(Value::as_array).unwrap_or(&empty);
        let ope = elements(ty, ol);
        let npe = elements(ty, nl);
        let ety = ty.elem();
        // Element lookups by path element; long lists get an index so the
        // walk stays linear in the size of the objects.
        let index: Option<std::collections::HashMap<&str, usize>> = (ope.len() > 8).then(|| {
            ope.iter()
                .enumerate()
                .map(|(i, p)| (p.as_str(), i))
                .collect()
        });
        let find = |pe: &str| match &index {
            Some(ix) => ix.get(pe).copied(),
            None => ope.iter().position(|p| p == pe),
        };
        for (pe, nv) in npe.iter().zip(nl) {
            let ov = find(pe).map(|i| &ol[i]);
            path.push(pe.clone());
            if ov.is_none() {
                c.added.insert(path);
            }
            walk_compare(ov, Some(nv), ety, path, c);
            path.pop();
        }
        let new_index: Option<std::collections::HashSet<&str>> =
            (npe.len() > 8).then(|| npe.iter().map(String::as_str).collect());
        let in_new = |pe: &str| match &new_index {
            Some(ix) => ix.contains(pe),
            None => npe.iter().any(|p| p == pe),
        };
        for (pe, ov) in ope.iter().zip(ol) {
            if !in_new(pe) {
                path.push(pe.clone());
                c.removed.insert(path);
                walk_compare(Some(ov), None, ety, path, c);
                path.pop();
            }
        }
        return;
    }
    if path.is_empty() {
        return;
    }
    match (old, new) {
        (None, Some(_)) => c.added.insert(path),
        (Some(_), None) => c.removed.insert(path),
        (Some(a), Some(b)) if a != b => c.modified.insert(path),
        _ => {}
    }
}

/// The `fieldsV1` of `compare(Some(base), new)`'s added and modified
/// paths, built straight from `new` without intermediate sets: what a
/// create records, on the path every create takes. `skip(depth, name)`
/// leaves out fields no manager owns.
pub fn added_fields_v1(
    base: Option<&Value>,
    new: &Value,
    ty: Ty,
    skip: &dyn Fn(&[&str], &str) -> bool,
) -> Map<String, Value> {
    let mut path = Vec::new();
    let mut out = Map::new();
    if let Value::Object(m) = new {
        for (k, v) in m {
            if skip(&path, k) {
                continue;
            }
            path.push(k.as_str());
            let b = base.and_then(|b| b.get(k));
            if let Some(node) = added_node(b, v, ty.child(k), &mut path, skip) {
                out.insert(fieldset::field(k), node);
            }
            path.pop();
        }
    }
    out
}

/// One node of [`added_fields_v1`]: `None` when nothing at or below it counts.
fn added_node<'a>(
    base: Option<&Value>,
    new: &'a Value,
    ty: Ty,
    path: &mut Vec<&'a str>,
    skip: &dyn Fn(&[&str], &str) -> bool,
) -> Option<Value> {
    let base = base.filter(|v| !v.is_null());
    if new.is_null() {
        return None;
    }
    let structured_obj = ty.is_object()
        && new.is_object()
        && base.is_none_or(Value::is_object)
        && !(is_empty_obj(base) && is_empty_obj(Some(new)));
    let (member, children) = if structured_obj {
        let mut children = Map::new();
        for (k, v) in new.as_object().expect("object") {
            if skip(path, k) {
                continue;
            }
            path.push(k.as_str());
            if let Some(node) = added_node(base.and_then(|b| b.get(k)), v, ty.child(k), path, skip)
            {
                children.insert(fieldset::field(k), node);
            }
            path.pop();
        }
        (base.is_none(), children)
    } else if ty.is_list() && new.is_array() && base.is_none_or(Value::is_array) {
        let mut children = Map::new();
        let ety = ty.elem();
        for (i, item) in new.as_array().expect("array").iter().enumerate() {
            let pe = item_element(ty, item).unwrap_or_else(|_| fieldset::index(i));
            let mut node = match added_node(None, item, ety, &mut Vec::new(), &|_, _| false) {
                Some(Value::Object(m)) => m,
                _ => Map::new(),
            };
            if !node.is_empty() {
                node.insert(".".into(), Value::Object(Map::new()));
            }
            children.insert(pe, Value::Object(node));
        }
        (false, children)
    } else {
        (base != Some(new), Map::new())
    };
    if !member && children.is_empty() {
        return None;
    }
    let mut node = children;
    if member && !node.is_empty() {
        node.insert(".".into(), Value::Object(Map::new()));
    }
    Some(Value::Object(node))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> Ty {
        Ty::root("apps/v1", "Deployment")
    }

    #[test]
    fn field_set_of_an_applied_deployment() {
        let cfg = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "labels": {"app": "x"}},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "x"}},
                "template": {
                    "metadata": {"labels": {"app": "x"}},
                    "spec": {"containers": [{
                        "name": "c", "image": "nginx",
                        "ports": [{"containerPort": 80}],
                        "args": ["a", "b"],
                        "resources": {}
                    }]}
                }
            }
        });
        let set = to_field_set(&cfg, deployment()).unwrap();
        assert_eq!(
            set.to_fields_v1(),
            json!({
                "f:apiVersion": {}, "f:kind": {},
                "f:metadata": {"f:name": {}, "f:labels": {"f:app": {}}},
                "f:spec": {
                    "f:replicas": {},
                    "f:selector": {},
                    "f:template": {
                        "f:metadata": {"f:labels": {"f:app": {}}},
                        "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {
                            ".": {}, "f:name": {}, "f:image": {}, "f:args": {}, "f:resources": {},
                            "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}
                        }}}
                    }
                }
            })
        );
    }

    #[test]
    fn set_lists_and_missing_keys() {
        let pod = Ty::root("v1", "Pod");
        let set = to_field_set(&json!({"metadata": {"finalizers": ["a/b"]}}), pod).unwrap();
        assert!(set.has(&["f:metadata", "f:finalizers", "v:\"a/b\""]));
        let err =
            to_field_set(&json!({"spec": {"containers": [{"image": "x"}]}}), pod).unwrap_err();
        assert!(err.contains("omits key field \"name\""), "{err}");
        let err = to_field_set(
            &json!({"spec": {"containers": [{"name": "a"}, {"name": "a"}]}}),
            pod,
        )
        .unwrap_err();
        assert_eq!(
            err,
            ".spec.containers: duplicate entries for key [name=\"a\"]"
        );
    }

    #[test]
    fn compare_marks_new_objects_and_items_and_changed_leaves() {
        let old = json!({"metadata": {"labels": {"a": "1"}}, "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}}});
        let new = json!({"metadata": {"labels": {"a": "1"}, "annotations": {"n": "v"}}, "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "d", "image": "x"}]}}}});
        let c = compare(Some(&old), &new, deployment());
        assert_eq!(
            c.added.to_fields_v1(),
            json!({"f:metadata": {"f:annotations": {".": {}, "f:n": {}}}, "f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"d\"}": {".": {}, "f:name": {}, "f:image": {}}}}}}})
        );
        assert_eq!(
            c.modified.to_fields_v1(),
            json!({"f:spec": {"f:replicas": {}}})
        );
        assert_eq!(
            c.removed.to_fields_v1(),
            json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:name": {}, "f:image": {}}}}}}})
        );
        assert_eq!(
            compare(Some(&new), &new, deployment()),
            Comparison::default()
        );
    }

    #[test]
    fn atomic_maps_and_lists_are_leaves() {
        let pod = Ty::root("v1", "Pod");
        let old = json!({"spec": {"nodeSelector": {"a": "1"}, "tolerations": [{"key": "k"}]}});
        let new = json!({"spec": {"nodeSelector": {"a": "2"}, "tolerations": [{"key": "j"}]}});
        let c = compare(Some(&old), &new, pod);
        assert_eq!(
            c.modified.to_fields_v1(),
            json!({"f:spec": {"f:nodeSelector": {}, "f:tolerations": {}}})
        );
        // Unknown kinds: objects by key, lists whole.
        let c = compare(
            None,
            &json!({"spec": {"x": [1]}}),
            Ty::root("example.com/v1", "W"),
        );
        assert_eq!(
            c.added.to_fields_v1(),
            json!({"f:spec": {".": {}, "f:x": {}}})
        );
    }
}
