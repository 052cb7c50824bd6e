//! Strategic merge patch (`application/strategic-merge-patch+json`) for built-in kinds.
//!
//! This module owns applying a strategic merge patch to a JSON object the way
//! kube-apiserver does, driven by the structural patch metadata in
//! [`super::patch_schema`]. It is pure: JSON in, JSON out, no IO.
//!
//! Semantics, in short:
//! - Objects merge key by key; `null` deletes a key. Keys the schema does not know
//!   behave like JSON merge patch (objects merge, lists and scalars are replaced).
//! - Lists whose field has the `merge` strategy merge element-wise: objects by their
//!   merge key (containers by `name`, container ports by `containerPort`, ...),
//!   primitives as a set (finalizers). All other lists are replaced.
//! - Directives: `$patch: replace | delete | merge` on objects and as list elements,
//!   `$retainKeys`, `$setElementOrder/<list>` and `$deleteFromPrimitiveList/<list>`.
//!   Directives never appear in the result.
//! - Element order follows upstream: elements named by the patch (or by
//!   `$setElementOrder`) take the patch's order, the other live elements keep their
//!   place relative to them, and elements the patch adds without an explicit order
//!   go before the untouched live elements.
//!
//! [`create_two_way_merge_patch`] computes the patch turning one object into another
//! (the inverse operation, used by clients such as `kubectl apply`).
//!
//! Deliberate differences from upstream, all on inputs kubectl never produces:
//! `$patch: merge` is accepted as an explicit "merge as usual" (upstream rejects it);
//! `$patch: replace` on an object that did not exist yet keeps the object (upstream
//! drops it); `$setElementOrder` on a list that does not merge is ignored;
//! `$deleteFromPrimitiveList` on a list that does not merge still only removes the
//! listed values; new list elements are cleaned of directives and nulls like any
//! other new value.

use std::collections::HashMap;
use std::fmt;

use serde_json::{Map, Value};

use super::patch_schema::{self, definition_at, Elem, PatchDef, Shape, Strategy};

pub use super::patch_schema::root_for;

type JsonMap = Map<String, Value>;

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";

/// Why a strategic merge patch could not be applied. Messages are meant for the
/// client (they end up in a 400/422 `Status`), and name the offending location as a
/// path such as `spec.containers[name="web"].ports`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StrategicPatchError {
    /// The schema root is not in the patch metadata table.
    #[error("strategic merge patch is not supported for {0:?}")]
    UnknownRoot(String),
    /// The patch document is not a JSON object.
    #[error("the strategic merge patch must be a JSON object, got {0}")]
    PatchNotObject(&'static str),
    /// The object being patched is not a JSON object.
    #[error("the object being patched must be a JSON object, got {0}")]
    OriginalNotObject(&'static str),
    /// `$patch` has a value other than `replace`, `delete` or `merge`.
    #[error(
        "{at}: invalid $patch directive {value}: expected \"replace\", \"delete\" or \"merge\""
    )]
    InvalidDirective { at: String, value: String },
    /// An element of a list merged by key lacks the key.
    #[error("{at}: list element {element} does not contain the merge key {key:?}")]
    MissingMergeKey {
        at: String,
        key: String,
        element: String,
    },
    /// Malformed `$retainKeys`.
    #[error("{at}: invalid $retainKeys directive: {reason}")]
    InvalidRetainKeys { at: String, reason: String },
    /// Malformed `$setElementOrder/<list>`.
    #[error("{at}: invalid $setElementOrder directive: {reason}")]
    InvalidSetElementOrder { at: String, reason: String },
    /// Malformed `$deleteFromPrimitiveList/<list>`.
    #[error("{at}: invalid $deleteFromPrimitiveList directive: {reason}")]
    InvalidDeleteFromPrimitiveList { at: String, reason: String },
    /// A `$`-prefixed key that is not a known directive.
    #[error("{at}: unknown patch directive {key:?}")]
    UnknownDirective { at: String, key: String },
    /// A list that cannot be merged (mixed element types, lists of lists...).
    #[error("{at}: {reason}")]
    InvalidList { at: String, reason: String },
}

type Result<T> = std::result::Result<T, StrategicPatchError>;

/// Apply a strategic merge `patch` to `original`.
///
/// `root` is the full OpenAPI definition name of the object's kind, e.g.
/// `io.k8s.api.core.v1.Pod`; [`root_for`] maps an apiVersion/kind pair to it.
/// `original` must be a JSON object (`null` is treated as an empty object) and
/// `patch` must be a JSON object. Neither input is modified.
pub fn strategic_merge_patch(root: &str, original: &Value, patch: &Value) -> Result<Value> {
    let def = patch_schema::definition(root)
        .ok_or_else(|| StrategicPatchError::UnknownRoot(root.to_string()))?;
    let Value::Object(patch) = patch else {
        return Err(StrategicPatchError::PatchNotObject(kind_name(patch)));
    };
    let original = match original {
        Value::Object(m) => m.clone(),
        Value::Null => JsonMap::new(),
        other => return Err(StrategicPatchError::OriginalNotObject(kind_name(other))),
    };
    merge_map(original, patch, Node::Def(def), &Path::ROOT).map(Value::Object)
}

// ---------------------------------------------------------------------------------
// Schema navigation

/// Schema of an object value: a table definition, a map with typed values, or
/// nothing known (patched like JSON merge patch).
#[derive(Clone, Copy)]
enum Node {
    Unknown,
    Def(&'static PatchDef),
    Map(Elem),
}

/// Everything the engine needs to know about one field.
#[derive(Clone, Copy)]
struct FieldMeta {
    /// Schema of the value when it is an object.
    value: Node,
    /// Schema of the elements when the value is a list.
    item: Node,
    strategy: Strategy,
    merge_key: Option<&'static str>,
}

impl FieldMeta {
    const UNKNOWN: FieldMeta = FieldMeta {
        value: Node::Unknown,
        item: Node::Unknown,
        strategy: Strategy::Unset,
        merge_key: None,
    };
}

fn elem_node(elem: Elem) -> Node {
    match elem {
        Elem::Def(i) => Node::Def(definition_at(i)),
        Elem::Scalar | Elem::Scalars => Node::Unknown,
    }
}

impl Node {
    fn field(self, name: &str) -> FieldMeta {
        match self {
            Node::Unknown => FieldMeta::UNKNOWN,
            // Every key of a map holds the same kind of value.
            Node::Map(elem) => FieldMeta {
                value: elem_node(elem),
                ..FieldMeta::UNKNOWN
            },
            Node::Def(def) => match def.field(name) {
                None => FieldMeta::UNKNOWN,
                Some(f) => {
                    let (value, item) = match f.shape {
                        Shape::Obj(i) => (Node::Def(definition_at(i)), Node::Unknown),
                        Shape::List(elem) => (Node::Unknown, elem_node(elem)),
                        Shape::Map(elem) => (Node::Map(elem), Node::Unknown),
                        Shape::Opaque => (Node::Unknown, Node::Unknown),
                    };
                    FieldMeta {
                        value,
                        item,
                        strategy: f.strategy,
                        merge_key: f.merge_key,
                    }
                }
            },
        }
    }
}

// ---------------------------------------------------------------------------------
// Error locations

/// A location inside the patched document, kept as a stack-allocated linked list so
/// that the happy path never formats anything.
#[derive(Clone, Copy)]
struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    seg: Seg<'a>,
}

#[derive(Clone, Copy)]
enum Seg<'a> {
    Root,
    Key(&'a str),
    /// A list element identified by its merge key.
    Keyed(&'a str, &'a Value),
    Index(usize),
}

impl<'a> Path<'a> {
    const ROOT: Path<'static> = Path {
        parent: None,
        seg: Seg::Root,
    };

    fn key<'b>(&'b self, key: &'b str) -> Path<'b> {
        Path {
            parent: Some(self),
            seg: Seg::Key(key),
        }
    }

    fn keyed<'b>(&'b self, key: &'b str, value: &'b Value) -> Path<'b> {
        Path {
            parent: Some(self),
            seg: Seg::Keyed(key, value),
        }
    }

    fn index(&self, index: usize) -> Path<'_> {
        Path {
            parent: Some(self),
            seg: Seg::Index(index),
        }
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut segs = Vec::new();
        let mut cur = Some(self);
        while let Some(p) = cur {
            segs.push(p.seg);
            cur = p.parent;
        }
        let mut wrote = false;
        for seg in segs.iter().rev() {
            match seg {
                Seg::Root => {}
                Seg::Key(k) => {
                    if wrote {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                    wrote = true;
                }
                Seg::Keyed(k, v) => {
                    write!(f, "[{k}={v}]")?;
                    wrote = true;
                }
                Seg::Index(i) => {
                    write!(f, "[{i}]")?;
                    wrote = true;
                }
            }
        }
        if !wrote {
            f.write_str("patch")?;
        }
        Ok(())
    }
}

/// Render a value for an error message, shortened so a huge element does not
/// drown the message.
fn excerpt(value: &Value) -> String {
    const MAX: usize = 200;
    let mut s = value.to_string();
    if s.len() > MAX {
        let mut cut = MAX;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

fn invalid_directive(path: &Path<'_>, value: &Value) -> StrategicPatchError {
    StrategicPatchError::InvalidDirective {
        at: path.to_string(),
        value: excerpt(value),
    }
}

fn missing_merge_key(path: &Path<'_>, key: &str, element: &Value) -> StrategicPatchError {
    StrategicPatchError::MissingMergeKey {
        at: path.to_string(),
        key: key.to_string(),
        element: excerpt(element),
    }
}

fn invalid_list(path: &Path<'_>, reason: impl Into<String>) -> StrategicPatchError {
    StrategicPatchError::InvalidList {
        at: path.to_string(),
        reason: reason.into(),
    }
}

fn kind_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

// ---------------------------------------------------------------------------------
// Value identity

/// Equality of merge keys and primitive list elements. Numbers compare by value,
/// so `80` and `80.0` are the same port, as they are once decoded upstream.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => canonical(a) == canonical(b),
        _ => a == b,
    }
}

/// A string that is equal for exactly the values [`same`] considers equal; used to
/// index lists so ordering stays linear in practice.
fn canonical(value: &Value) -> String {
    match value {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                format!("n{i}")
            } else if let Some(u) = n.as_u64() {
                format!("n{u}")
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                // Integral floats must index like the integer they equal.
                if f.fract() == 0.0 && f.abs() < 9.0e15 {
                    format!("n{}", f as i64)
                } else {
                    format!("f{f}")
                }
            }
        }
        Value::String(s) => format!("s{s}"),
        other => format!("j{other}"),
    }
}

/// First position of each identity in a list of identities.
struct PositionIndex(HashMap<String, usize>);

impl PositionIndex {
    fn new<'v>(ids: impl Iterator<Item = &'v Value>) -> Self {
        let mut map = HashMap::new();
        for (i, id) in ids.enumerate() {
            map.entry(canonical(id)).or_insert(i);
        }
        PositionIndex(map)
    }

    fn get(&self, id: Option<&Value>) -> Option<usize> {
        id.and_then(|id| self.0.get(&canonical(id)).copied())
    }
}

/// The identity of a list element: its merge key value, or the element itself for
/// lists of primitives.
fn ident<'v>(element: &'v Value, merge_key: Option<&str>) -> Option<&'v Value> {
    match merge_key {
        Some(key) => element.get(key),
        None => Some(element),
    }
}

// ---------------------------------------------------------------------------------
// Maps

fn merge_map(
    mut original: JsonMap,
    patch: &JsonMap,
    node: Node,
    path: &Path<'_>,
) -> Result<JsonMap> {
    if let Some(directive) = patch.get(DIRECTIVE) {
        match directive.as_str() {
            Some("delete") => return Ok(JsonMap::new()),
            // The rest of the patch is the complete new value: apply it to nothing,
            // which also strips any nested directives.
            Some("replace") => original = JsonMap::new(),
            Some("merge") => {}
            _ => return Err(invalid_directive(path, directive)),
        }
    }
    if let Some(keys) = patch.get(RETAIN_KEYS) {
        apply_retain_keys(&mut original, patch, keys, path)?;
    }
    let ordered = apply_element_orders(&mut original, patch, node, path)?;

    // `$deleteFromPrimitiveList` runs after everything else so its outcome does not
    // depend on key order when the same list is also merged.
    let mut deletions = Vec::new();
    for (key, value) in patch {
        if key.starts_with('$') {
            if key == DIRECTIVE || key == RETAIN_KEYS || key.starts_with(SET_ELEMENT_ORDER) {
                continue;
            }
            if key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
                deletions.push((key, value));
                continue;
            }
            return Err(StrategicPatchError::UnknownDirective {
                at: path.to_string(),
                key: key.clone(),
            });
        }
        if ordered.contains(&key.as_str()) {
            continue;
        }
        if value.is_null() {
            original.remove(key);
            continue;
        }
        let meta = node.field(key);
        let child = path.key(key);
        // Take the old value out (leaving the key in place, which keeps its position
        // when the map preserves insertion order).
        let old = original.get_mut(key).map(std::mem::take);
        let new = match (old, value) {
            (Some(Value::Object(o)), Value::Object(p)) if meta.strategy != Strategy::Replace => {
                Some(Value::Object(merge_map(o, p, meta.value, &child)?))
            }
            (Some(Value::Array(o)), Value::Array(p)) if meta.strategy.merges_lists() => {
                Some(Value::Array(merge_list(o, p, meta, &child)?.0))
            }
            // New keys, replaced values and type changes all take the patch value.
            (_, value) => materialize(value, meta, &child)?,
        };
        match new {
            Some(v) => {
                original.insert(key.clone(), v);
            }
            None => {
                original.remove(key);
            }
        }
    }
    for (key, value) in deletions {
        delete_from_primitive_list(&mut original, key, value, path)?;
    }
    Ok(original)
}

/// `$retainKeys: [..]`: drop every key of the original not listed. Every key the
/// patch sets must be listed, otherwise the patch contradicts itself.
fn apply_retain_keys(
    original: &mut JsonMap,
    patch: &JsonMap,
    keys: &Value,
    path: &Path<'_>,
) -> Result<()> {
    let invalid = |reason: String| StrategicPatchError::InvalidRetainKeys {
        at: path.to_string(),
        reason,
    };
    let Value::Array(keys) = keys else {
        return Err(invalid(format!(
            "expected a list of field names, got {}",
            kind_name(keys)
        )));
    };
    let retained = |k: &str| keys.iter().any(|x| x.as_str() == Some(k));
    for (k, v) in patch {
        if v.is_null() || k.starts_with('$') {
            continue;
        }
        if !retained(k) {
            return Err(invalid(format!(
                "field {k:?} is set by the patch but not listed"
            )));
        }
    }
    original.retain(|k, _| retained(k));
    Ok(())
}

/// `$deleteFromPrimitiveList/<field>: [..]`: remove every occurrence of the listed
/// values from the list.
fn delete_from_primitive_list(
    original: &mut JsonMap,
    key: &str,
    values: &Value,
    path: &Path<'_>,
) -> Result<()> {
    let field = key[DELETE_FROM_PRIMITIVE_LIST.len()..]
        .strip_prefix('/')
        .filter(|f| !f.is_empty())
        .ok_or_else(|| StrategicPatchError::InvalidDeleteFromPrimitiveList {
            at: path.to_string(),
            reason: format!("{key:?} must be of the form \"$deleteFromPrimitiveList/<field>\""),
        })?;
    let child = path.key(field);
    let invalid = |reason: String| StrategicPatchError::InvalidDeleteFromPrimitiveList {
        at: child.to_string(),
        reason,
    };
    let values = match values {
        Value::Array(values) => values,
        // Nothing to delete.
        Value::Null => return Ok(()),
        other => {
            return Err(invalid(format!(
                "expected a list of values, got {}",
                kind_name(other)
            )))
        }
    };
    if let Some(bad) = values.iter().find(|v| v.is_object() || v.is_array()) {
        return Err(invalid(format!(
            "only primitive values can be deleted, got {}",
            excerpt(bad)
        )));
    }
    if let Some(Value::Array(list)) = original.get_mut(field) {
        list.retain(|x| !values.iter().any(|v| same(x, v)));
    }
    Ok(())
}

/// Process every `$setElementOrder/<field>` of `patch`: merge the field's list (if the
/// patch has one) and put the result in the requested order. Returns the fields whose
/// patch lists were consumed here.
fn apply_element_orders<'p>(
    original: &mut JsonMap,
    patch: &'p JsonMap,
    node: Node,
    path: &Path<'_>,
) -> Result<Vec<&'p str>> {
    let mut consumed = Vec::new();
    for (key, order) in patch {
        let Some(rest) = key.strip_prefix(SET_ELEMENT_ORDER) else {
            continue;
        };
        let field = rest
            .strip_prefix('/')
            .filter(|f| !f.is_empty())
            .ok_or_else(|| StrategicPatchError::InvalidSetElementOrder {
                at: path.to_string(),
                reason: format!("{key:?} must be of the form \"$setElementOrder/<field>\""),
            })?;
        let child = path.key(field);
        let invalid = |reason: String| StrategicPatchError::InvalidSetElementOrder {
            at: child.to_string(),
            reason,
        };
        let Value::Array(order) = order else {
            return Err(invalid(format!(
                "expected a list, got {}",
                kind_name(order)
            )));
        };
        let meta = node.field(field);
        if !meta.strategy.merges_lists() {
            // Only merged lists have an order to negotiate; a replaced list takes the
            // patch's order as is.
            continue;
        }
        let patch_list = match patch.get(field) {
            None => None,
            Some(Value::Array(list)) => Some(list.as_slice()),
            // Deleting or replacing the list by a non-list: nothing to order.
            Some(_) => continue,
        };
        let original_list = match original.get_mut(field) {
            Some(Value::Array(list)) => Some(std::mem::take(list)),
            _ => None,
        };

        let key_name = meta.merge_key;
        let mut order_ids = Vec::with_capacity(order.len());
        for entry in order {
            match ident(entry, key_name) {
                Some(id) => order_ids.push(id),
                None => return Err(missing_merge_key(&child, key_name.unwrap_or(""), entry)),
            }
        }
        if let Some(list) = patch_list {
            check_patch_follows_order(list, &order_ids, key_name, &child)?;
        }

        let (merged, reference) = match (original_list, patch_list) {
            (None, None) => continue,
            (Some(list), None) => {
                let reference = ids_of(&list, key_name);
                (list, reference)
            }
            (None, Some(list)) => (materialize_list(list, meta, &child)?, Vec::new()),
            (Some(o), Some(p)) => merge_list(o, p, meta, &child)?,
        };
        let ordered = order_elements(merged, &order_ids, &reference, key_name);
        original.insert(field.to_string(), Value::Array(ordered));
        if patch_list.is_some() {
            consumed.push(field);
        }
    }
    Ok(consumed)
}

/// The patch list must name its elements in the same relative order as
/// `$setElementOrder` (deletions and directive markers aside).
fn check_patch_follows_order(
    patch: &[Value],
    order_ids: &[&Value],
    merge_key: Option<&str>,
    path: &Path<'_>,
) -> Result<()> {
    let mut remaining = order_ids.iter();
    for element in patch {
        if element.get(DIRECTIVE).is_some() {
            continue;
        }
        let id = ident(element, merge_key)
            .ok_or_else(|| missing_merge_key(path, merge_key.unwrap_or(""), element))?;
        if !remaining.any(|o| same(o, id)) {
            return Err(StrategicPatchError::InvalidSetElementOrder {
                at: path.to_string(),
                reason: format!(
                    "the patch list element {} is missing from the order list or out of order",
                    excerpt(id)
                ),
            });
        }
    }
    Ok(())
}

fn ids_of(list: &[Value], merge_key: Option<&str>) -> Vec<Value> {
    list.iter()
        .filter_map(|e| ident(e, merge_key).cloned())
        .collect()
}

// ---------------------------------------------------------------------------------
// Lists

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ElemKind {
    Object,
    String,
    Number,
    Bool,
}

/// The common element kind of the lists being merged (`None` when there are no
/// elements). Mixed kinds and nested lists cannot be merged.
fn list_kind<'v>(
    elements: impl Iterator<Item = &'v Value>,
    path: &Path<'_>,
) -> Result<Option<ElemKind>> {
    let mut kind = None;
    for e in elements {
        let k = match e {
            Value::Null => continue,
            Value::Object(_) => ElemKind::Object,
            Value::String(_) => ElemKind::String,
            Value::Number(_) => ElemKind::Number,
            Value::Bool(_) => ElemKind::Bool,
            Value::Array(_) => return Err(invalid_list(path, "lists of lists cannot be merged")),
        };
        match kind {
            None => kind = Some(k),
            Some(prev) if prev != k => {
                return Err(invalid_list(
                    path,
                    format!("list elements must all have the same type, found {prev:?} and {k:?}"),
                ))
            }
            Some(_) => {}
        }
    }
    Ok(kind)
}

/// Merge a patch list into a list with the `merge` strategy.
///
/// Returns the merged list and the reference order upstream uses for live
/// elements when a `$setElementOrder` directive then reorders the result: the live
/// identities after `$patch: delete` removals, with the first appended elements
/// filling the vacated slots (upstream reuses the live list's storage, so this is
/// the order its reordering step observes).
fn merge_list(
    original: Vec<Value>,
    patch: &[Value],
    meta: FieldMeta,
    path: &Path<'_>,
) -> Result<(Vec<Value>, Vec<Value>)> {
    // List-level markers: `{"$patch": "replace"}` (any element carrying it) and a
    // bare `{"$patch": "merge"}`.
    let mut replace = false;
    let mut elements = Vec::with_capacity(patch.len());
    for e in patch {
        if let Some(directive) = e.get(DIRECTIVE) {
            match directive.as_str() {
                Some("replace") => {
                    replace = true;
                    continue;
                }
                Some("merge") if e.as_object().is_some_and(|m| m.len() == 1) => continue,
                Some("merge") | Some("delete") => {}
                _ => return Err(invalid_directive(path, directive)),
            }
        }
        elements.push(e);
    }
    let kind = list_kind(original.iter().chain(elements.iter().copied()), path)?;
    match kind {
        None if replace => Ok((Vec::new(), ids_of(&original, meta.merge_key))),
        None => {
            let reference = ids_of(&original, meta.merge_key);
            Ok((original, reference))
        }
        Some(ElemKind::Object) => merge_object_list(original, &elements, replace, meta, path),
        Some(_) => Ok(merge_primitive_list(original, &elements, replace)),
    }
}

/// Lists of primitives merge as an ordered set.
fn merge_primitive_list(
    original: Vec<Value>,
    patch: &[&Value],
    replace: bool,
) -> (Vec<Value>, Vec<Value>) {
    if replace {
        let list = patch.iter().map(|v| (*v).clone()).collect();
        return (list, original);
    }
    let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
    for v in original.iter().chain(patch.iter().copied()) {
        if !merged.iter().any(|m| same(m, v)) {
            merged.push(v.clone());
        }
    }
    let order: Vec<&Value> = patch.to_vec();
    let ordered = order_elements(merged, &order, &original, None);
    (ordered, original)
}

/// Lists of objects merge element-wise by merge key.
fn merge_object_list(
    original: Vec<Value>,
    patch: &[&Value],
    replace: bool,
    meta: FieldMeta,
    path: &Path<'_>,
) -> Result<(Vec<Value>, Vec<Value>)> {
    let key = meta.merge_key.ok_or_else(|| {
        invalid_list(
            path,
            "this list cannot be merged: its elements have no merge key",
        )
    })?;
    let live_len = original.len();
    let mut working = original;

    // Deletions first, as upstream does, so a patch can delete and re-add.
    let mut plain = Vec::with_capacity(patch.len());
    for element in patch {
        if element.get(DIRECTIVE).and_then(Value::as_str) == Some("delete") {
            let id = element
                .get(key)
                .ok_or_else(|| missing_merge_key(path, key, element))?;
            working.retain(|x| !x.get(key).is_some_and(|v| same(v, id)));
        } else {
            plain.push(*element);
        }
    }

    if replace {
        let reference = ids_of(&working, Some(key));
        let mut list = Vec::with_capacity(plain.len());
        for element in plain {
            let id = element
                .get(key)
                .ok_or_else(|| missing_merge_key(path, key, element))?;
            if let Some(v) = materialize_element(element, meta, &path.keyed(key, id))? {
                list.push(v);
            }
        }
        return Ok((list, reference));
    }

    let live_after_delete = ids_of(&working, Some(key));
    let mut reference = live_after_delete.clone();
    let mut order = Vec::with_capacity(plain.len());
    for element in plain {
        let id = element
            .get(key)
            .ok_or_else(|| missing_merge_key(path, key, element))?;
        order.push(id);
        let child = path.keyed(key, id);
        let existing = working
            .iter()
            .position(|x| x.get(key).is_some_and(|v| same(v, id)));
        match (existing, element) {
            (Some(i), Value::Object(p)) => {
                let o = match std::mem::take(&mut working[i]) {
                    Value::Object(o) => o,
                    _ => JsonMap::new(),
                };
                working[i] = Value::Object(merge_map(o, p, meta.item, &child)?);
            }
            _ => {
                if let Some(v) = materialize_element(element, meta, &child)? {
                    working.push(v);
                    reference.push(id.clone());
                }
            }
        }
    }
    if let Some(bad) = working.iter().find(|x| x.get(key).is_none()) {
        return Err(missing_merge_key(path, key, bad));
    }

    let ordered = order_elements(working, &order, &live_after_delete, Some(key));
    reference.truncate(live_len);
    Ok((ordered, reference))
}

/// Put `items` in order: items whose identity appears in `order` follow it; the others
/// keep their relative order from `reference`, and an unlisted item goes before a
/// listed one only when `reference` has it earlier. Items absent from `reference`
/// (new ones) therefore go before the untouched live items.
fn order_elements(
    items: Vec<Value>,
    order: &[&Value],
    reference: &[Value],
    merge_key: Option<&str>,
) -> Vec<Value> {
    let order_pos = PositionIndex::new(order.iter().copied());
    let ref_pos = PositionIndex::new(reference.iter());
    let (mut listed, mut unlisted): (Vec<Value>, Vec<Value>) = items
        .into_iter()
        .partition(|v| order_pos.get(ident(v, merge_key)).is_some());
    listed.sort_by_key(|v| order_pos.get(ident(v, merge_key)));
    unlisted.sort_by_key(|v| ref_pos.get(ident(v, merge_key)).unwrap_or(usize::MAX));

    let mut out = Vec::with_capacity(listed.len() + unlisted.len());
    let mut listed = listed.into_iter().peekable();
    let mut unlisted = unlisted.into_iter().peekable();
    while let (Some(u), Some(l)) = (unlisted.peek(), listed.peek()) {
        let u_pos = ref_pos.get(ident(u, merge_key));
        let l_pos = ref_pos.get(ident(l, merge_key));
        let next = match (u_pos, l_pos) {
            (Some(a), Some(b)) if a < b => unlisted.next(),
            _ => listed.next(),
        };
        out.extend(next);
    }
    out.extend(listed);
    out.extend(unlisted);
    out
}

// ---------------------------------------------------------------------------------
// New values

/// Turn a patch value into a plain value for a place where nothing is merged into
/// it: nulls vanish, directives are applied to nothing and removed. `None` means the
/// value disappears (`null`, or an object with `$patch: delete`).
fn materialize(value: &Value, meta: FieldMeta, path: &Path<'_>) -> Result<Option<Value>> {
    Ok(match value {
        Value::Null => None,
        Value::Object(m) => materialize_map(m, meta.value, path)?.map(Value::Object),
        Value::Array(list) => Some(Value::Array(materialize_list(list, meta, path)?)),
        scalar => Some(scalar.clone()),
    })
}

fn materialize_map(patch: &JsonMap, node: Node, path: &Path<'_>) -> Result<Option<JsonMap>> {
    if patch.get(DIRECTIVE).and_then(Value::as_str) == Some("delete") {
        return Ok(None);
    }
    merge_map(JsonMap::new(), patch, node, path).map(Some)
}

fn materialize_element(element: &Value, meta: FieldMeta, path: &Path<'_>) -> Result<Option<Value>> {
    match element {
        Value::Object(m) => Ok(materialize_map(m, meta.item, path)?.map(Value::Object)),
        other => Ok(Some(other.clone())),
    }
}

/// A list that replaces (or creates) a value. Elements are kept as given, except
/// that directive markers and `$patch: delete` elements are dropped.
fn materialize_list(list: &[Value], meta: FieldMeta, path: &Path<'_>) -> Result<Vec<Value>> {
    let mut out = Vec::with_capacity(list.len());
    for (i, element) in list.iter().enumerate() {
        if let Some(directive) = element.get(DIRECTIVE) {
            match directive.as_str() {
                Some("replace") | Some("delete") => continue,
                Some("merge") if element.as_object().is_some_and(|m| m.len() == 1) => continue,
                Some("merge") => {}
                _ => return Err(invalid_directive(&path.index(i), directive)),
            }
        }
        let id = meta.merge_key.and_then(|k| element.get(k).map(|v| (k, v)));
        let indexed = path.index(i);
        let child = match id {
            Some((k, v)) => path.keyed(k, v),
            None => indexed,
        };
        if let Some(v) = materialize_element(element, meta, &child)? {
            out.push(v);
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------
// Two-way patch creation

/// Compute a strategic merge patch that turns `original` into `modified`, as
/// upstream's `CreateTwoWayMergePatch` does: changed and added fields are set,
/// removed fields are set to `null`, lists with the `merge` strategy get per-element
/// patches, `$patch: delete` elements, `$deleteFromPrimitiveList/<list>` and
/// `$setElementOrder/<list>` directives, and fields with the `retainKeys` strategy
/// get a `$retainKeys` directive.
///
/// Applying the result with [`strategic_merge_patch`] to `original` yields `modified`
/// (up to keys `modified` sets to `null`). Both inputs must be JSON objects (`null` is
/// treated as an empty object).
pub fn create_two_way_merge_patch(root: &str, original: &Value, modified: &Value) -> Result<Value> {
    let def = patch_schema::definition(root)
        .ok_or_else(|| StrategicPatchError::UnknownRoot(root.to_string()))?;
    let empty = JsonMap::new();
    let as_map = |v: &'_ Value| -> Result<Option<JsonMap>> {
        match v {
            Value::Object(m) => Ok(Some(m.clone())),
            Value::Null => Ok(None),
            other => Err(StrategicPatchError::OriginalNotObject(kind_name(other))),
        }
    };
    let original = as_map(original)?;
    let modified = as_map(modified)?;
    let patch = diff_maps(
        original.as_ref().unwrap_or(&empty),
        modified.as_ref().unwrap_or(&empty),
        Node::Def(def),
        false,
        &Path::ROOT,
    )?;
    Ok(Value::Object(patch))
}

fn diff_maps(
    original: &JsonMap,
    modified: &JsonMap,
    node: Node,
    retain_keys: bool,
    path: &Path<'_>,
) -> Result<JsonMap> {
    let mut patch = JsonMap::new();
    for (key, new) in modified {
        let Some(old) = original.get(key) else {
            patch.insert(key.clone(), new.clone());
            continue;
        };
        let meta = node.field(key);
        let child = path.key(key);
        match (old, new) {
            (Value::Object(o), Value::Object(m)) if meta.strategy != Strategy::Replace => {
                let sub = diff_maps(o, m, meta.value, meta.strategy.retains_keys(), &child)?;
                if !sub.is_empty() {
                    patch.insert(key.clone(), Value::Object(sub));
                }
            }
            (Value::Array(o), Value::Array(m)) if meta.strategy.merges_lists() => {
                let diff = diff_lists(o, m, meta, &child)?;
                if !diff.changes.is_empty() {
                    patch.insert(key.clone(), Value::Array(diff.changes));
                }
                if !diff.deletions.is_empty() {
                    patch.insert(
                        format!("{DELETE_FROM_PRIMITIVE_LIST}/{key}"),
                        Value::Array(diff.deletions),
                    );
                }
                if !diff.order.is_empty() {
                    patch.insert(
                        format!("{SET_ELEMENT_ORDER}/{key}"),
                        Value::Array(diff.order),
                    );
                }
            }
            _ => {
                if old != new {
                    patch.insert(key.clone(), new.clone());
                }
            }
        }
    }
    for key in original.keys() {
        if !modified.contains_key(key) {
            patch.insert(key.clone(), Value::Null);
        }
    }
    // Clients list every field they keep so the server drops the others (e.g. the
    // old volume source when a volume switches from emptyDir to configMap).
    if retain_keys && !patch.is_empty() {
        let mut keep: Vec<&String> = modified
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, _)| k)
            .collect();
        keep.sort();
        if !keep.is_empty() {
            let keep = keep.into_iter().map(|k| Value::String(k.clone())).collect();
            patch.insert(RETAIN_KEYS.to_string(), Value::Array(keep));
        }
    }
    Ok(patch)
}

/// The parts of a patch for one merging list.
struct ListDiff {
    /// Added and changed elements, then `$patch: delete` elements.
    changes: Vec<Value>,
    /// Primitive values to remove (`$deleteFromPrimitiveList/<list>`).
    deletions: Vec<Value>,
    /// `$setElementOrder/<list>`; empty when neither content nor order changed.
    order: Vec<Value>,
}

fn diff_lists(
    original: &[Value],
    modified: &[Value],
    meta: FieldMeta,
    path: &Path<'_>,
) -> Result<ListDiff> {
    let mut diff = ListDiff {
        changes: Vec::new(),
        deletions: Vec::new(),
        order: Vec::new(),
    };
    if original.is_empty() {
        diff.changes = modified.to_vec();
        return Ok(diff);
    }
    match list_kind(original.iter().chain(modified), path)? {
        None => {}
        Some(ElemKind::Object) => {
            let key = meta.merge_key.ok_or_else(|| {
                invalid_list(
                    path,
                    "this list cannot be merged: its elements have no merge key",
                )
            })?;
            let id_of = |e: &Value| {
                e.get(key)
                    .cloned()
                    .ok_or_else(|| missing_merge_key(path, key, e))
            };
            let original_ids = original.iter().map(id_of).collect::<Result<Vec<_>>>()?;
            let modified_ids = modified.iter().map(id_of).collect::<Result<Vec<_>>>()?;
            let original_pos = PositionIndex::new(original_ids.iter());
            let modified_pos = PositionIndex::new(modified_ids.iter());
            for (element, id) in modified.iter().zip(&modified_ids) {
                match original_pos.get(Some(id)) {
                    Some(i) => {
                        let (Value::Object(o), Value::Object(m)) = (&original[i], element) else {
                            unreachable!("list_kind checked every element is an object")
                        };
                        let child = path.keyed(key, id);
                        let retain = meta.strategy.retains_keys();
                        let mut sub = diff_maps(o, m, meta.item, retain, &child)?;
                        if !sub.is_empty() {
                            sub.insert(key.to_string(), id.clone());
                            diff.changes.push(Value::Object(sub));
                        }
                    }
                    None => diff.changes.push(element.clone()),
                }
            }
            let mut deleted = Vec::new();
            for id in &original_ids {
                if modified_pos.get(Some(id)).is_none() && !deleted.iter().any(|d| same(d, id)) {
                    deleted.push(id.clone());
                }
            }
            for id in deleted {
                let mut element = JsonMap::new();
                element.insert(key.to_string(), id);
                element.insert(DIRECTIVE.to_string(), Value::String("delete".to_string()));
                diff.changes.push(Value::Object(element));
            }
            let order_same = original_ids.len() == modified_ids.len()
                && original_ids
                    .iter()
                    .zip(&modified_ids)
                    .all(|(a, b)| same(a, b));
            if !diff.changes.is_empty() || !order_same {
                diff.order = modified_ids
                    .into_iter()
                    .map(|id| {
                        let mut entry = JsonMap::new();
                        entry.insert(key.to_string(), id);
                        Value::Object(entry)
                    })
                    .collect();
            }
        }
        Some(_) => {
            let contains = |list: &[Value], v: &Value| list.iter().any(|x| same(x, v));
            for v in modified {
                if !contains(original, v) && !contains(&diff.changes, v) {
                    diff.changes.push(v.clone());
                }
            }
            for v in original {
                if !contains(modified, v) && !contains(&diff.deletions, v) {
                    diff.deletions.push(v.clone());
                }
            }
            if !diff.deletions.is_empty() || original != modified {
                diff.order = modified.to_vec();
            }
        }
    }
    Ok(diff)
}
