//! Merging an applied configuration into the live object, and removing what
//! a manager applied before and applies no more. Pure.

use serde_json::Value;

use super::fieldset::{self, Set};
use super::typed::{item_element, Ty};

/// The live object with the configuration merged in: objects merge key by
/// key, list maps by their keys and sets by value (live order first, new
/// elements appended), everything else is replaced. A null in the
/// configuration removes the field.
pub fn merge(live: &Value, config: &Value, ty: Ty) -> Value {
    match (live, config) {
        (Value::Object(l), Value::Object(c))
            if matches!(ty, Ty::Struct(_) | Ty::Map(_) | Ty::Unknown) =>
        {
            let mut out = l.clone();
            for (k, cv) in c {
                if cv.is_null() {
                    out.remove(k);
                    continue;
                }
                let merged = match l.get(k) {
                    Some(lv) => merge(lv, cv, ty.child(k)),
                    None => cv.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(c)) if matches!(ty, Ty::ListMap(..) | Ty::ListSet) => {
            let mut out = l.clone();
            let mut keys: Vec<Option<String>> =
                l.iter().map(|v| item_element(ty, v).ok()).collect();
            for cv in c {
                let Ok(pe) = item_element(ty, cv) else {
                    out.push(cv.clone());
                    keys.push(None);
                    continue;
                };
                match keys.iter().position(|k| k.as_deref() == Some(pe.as_str())) {
                    Some(i) => out[i] = merge(&out[i], cv, ty.elem()),
                    None => {
                        out.push(cv.clone());
                        keys.push(Some(pe));
                    }
                }
            }
            Value::Array(out)
        }
        _ => config.clone(),
    }
}

/// Removes from `obj` the members of `remove` that nobody owns: a field
/// is kept when `owned` has it or anything below it; a list element when
/// `owned` has the element itself. A list or map that pruning empties goes
/// too.
pub fn prune(obj: &mut Value, remove: &Set, owned: &Set, ty: Ty) {
    prune_in(obj, remove, Some(owned), ty);
}

/// Prunes below one child; true when pruning emptied it.
fn prune_child(child: &mut Value, remove: &Set, owned: Option<&Set>, ty: Ty) -> bool {
    let before = container_len(child);
    prune_in(child, remove, owned, ty);
    before > 0 && container_len(child) == 0
}

fn container_len(v: &Value) -> usize {
    match v {
        Value::Object(m) => m.len(),
        Value::Array(a) => a.len(),
        _ => 0,
    }
}

fn prune_in(obj: &mut Value, remove: &Set, owned: Option<&Set>, ty: Ty) {
    match obj {
        Value::Object(m) => {
            for (pe, entry) in remove.iter() {
                let Some(name) = pe.strip_prefix("f:") else {
                    continue;
                };
                let owned_here = owned.and_then(|o| o.get(pe));
                if entry.member && owned_here.is_none() {
                    m.remove(name);
                } else if !entry.children.is_empty() {
                    let emptied = m.get_mut(name).is_some_and(|child| {
                        prune_child(
                            child,
                            &entry.children,
                            owned_here.map(|e| &e.children),
                            ty.child(name),
                        )
                    });
                    if emptied {
                        m.remove(name);
                    }
                }
            }
        }
        Value::Array(items) => {
            let ety = ty.elem();
            let mut i = 0;
            while i < items.len() {
                let pe = item_element(ty, &items[i]).unwrap_or_else(|_| fieldset::index(i));
                let Some(entry) = remove.get(&pe) else {
                    i += 1;
                    continue;
                };
                let owned_here = owned.and_then(|o| o.get(&pe));
                if entry.member && !owned_here.is_some_and(|e| e.member) {
                    items.remove(i);
                    continue;
                }
                if !entry.children.is_empty() {
                    prune_child(
                        &mut items[i],
                        &entry.children,
                        owned_here.map(|e| &e.children),
                        ety,
                    );
                }
                i += 1;
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::super::typed::to_field_set;
    use super::*;
    use serde_json::json;

    fn pod() -> Ty {
        Ty::root("v1", "Pod")
    }

    #[test]
    fn merges_list_maps_by_key_and_replaces_atomic_lists() {
        let live = json!({"spec": {
            "containers": [{"name": "a", "image": "x", "args": ["1"]}, {"name": "b", "image": "y"}],
            "tolerations": [{"key": "k"}],
        }});
        let cfg = json!({"spec": {
            "containers": [{"name": "b", "image": "z"}, {"name": "c", "image": "w"}, {"name": "a", "args": ["2"]}],
            "tolerations": [{"key": "j"}],
        }});
        assert_eq!(
            merge(&live, &cfg, pod()),
            json!({"spec": {
                "containers": [{"name": "a", "image": "x", "args": ["2"]}, {"name": "b", "image": "z"}, {"name": "c", "image": "w"}],
                "tolerations": [{"key": "j"}],
            }})
        );
    }

    #[test]
    fn merges_sets_and_maps_and_null_removes() {
        let live = json!({"metadata": {"finalizers": ["a/x"], "labels": {"a": "1", "b": "2"}}});
        let cfg =
            json!({"metadata": {"finalizers": ["b/y", "a/x"], "labels": {"b": null, "c": "3"}}});
        assert_eq!(
            merge(&live, &cfg, pod()),
            json!({"metadata": {"finalizers": ["a/x", "b/y"], "labels": {"a": "1", "c": "3"}}})
        );
    }

    #[test]
    fn prune_removes_unowned_fields_and_items_only() {
        let mut obj = json!({
            "metadata": {"labels": {"a": "1", "b": "2"}},
            "spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}
        });
        let last = to_field_set(
            &json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}}),
            pod(),
        )
        .unwrap();
        // Now applies only label a and container a; someone else owns label b's... nothing,
        // and container b's image.
        let mut owned = to_field_set(
            &json!({"metadata": {"labels": {"a": "1"}}, "spec": {"containers": [{"name": "a", "image": "x"}]}}),
            pod(),
        )
        .unwrap();
        let other = to_field_set(&json!({"metadata": {"labels": {"z": "1"}}}), pod()).unwrap();
        owned.union_with(&other);
        prune(&mut obj, &last.difference(&owned), &owned, pod());
        assert_eq!(
            obj,
            json!({"metadata": {"labels": {"a": "1"}}, "spec": {"containers": [{"name": "a", "image": "x"}]}})
        );
        // A co-owned field stays.
        let mut obj = json!({"metadata": {"labels": {"a": "1", "b": "2"}}});
        let last = to_field_set(
            &json!({"metadata": {"labels": {"a": "1", "b": "2"}}}),
            pod(),
        )
        .unwrap();
        let owned = to_field_set(&json!({"metadata": {"labels": {"b": "2"}}}), pod()).unwrap();
        prune(&mut obj, &last.difference(&owned), &owned, pod());
        assert_eq!(obj, json!({"metadata": {"labels": {"b": "2"}}}));
    }
}
