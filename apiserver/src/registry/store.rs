//! The generic store: every verb for every kind, driven by the kind's
//! strategy. All writes go through `storage::guaranteed_update` or
//! `Storage::create`; the store adds metadata rules, validation, admission
//! and the namespace lifecycle checks.

use std::sync::{Arc, Mutex};

use serde_json::{json, Map, Value};

use super::options::{
    DeleteOptions, FieldValidation, ListOptions, Propagation, RvMatch, WriteOptions,
};
use super::patch::{self, PatchType};
use super::strategy::Strategy;
use super::Registry;
use crate::apply::{managed, ApplyError, Ty, Writer};
use crate::error::{ApiError, ApiResult, Reason};
use crate::field_path::{render, Step};
use crate::meta;
use crate::storage::{self, KeyValue, Preconditions, Revision, StorageError, Update};

/// Warnings to return in `Warning` headers.
pub type Warnings = Vec<String>;

/// Which part of an object an update addresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Main,
    Status,
    /// A server-side change (binding, finalize): the change function alone
    /// decides the result; no prepare hooks and no update validation.
    Internal,
}

const SYSTEM_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

impl Registry {
    /// Checks `apiVersion`/`kind` against the URL's kind and fills them in.
    fn check_type_meta(s: &dyn Strategy, obj: &mut Value) -> ApiResult<()> {
        let d = s.descriptor();
        let gv = d.group_version();
        let Some(map) = obj.as_object_mut() else {
            return Err(ApiError::bad_request(
                "the request body must be a JSON object",
            ));
        };
        // Missing type fields default to the endpoint's kind, as upstream's
        // decoder does (the Python client sends objects without them).
        let kind = map.get("kind").and_then(Value::as_str).unwrap_or(d.kind);
        let kind = if kind.is_empty() { d.kind } else { kind };
        let api_version = map.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        if kind != d.kind || (!api_version.is_empty() && api_version != gv) {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({api_version}) does not match the expected API version ({gv}) or the kind ({kind}) is not {}",
                d.kind
            )));
        }
        map.insert("apiVersion".into(), Value::String(gv));
        map.insert("kind".into(), Value::String(d.kind.to_string()));
        Ok(())
    }

    /// Runs the typed round trip; unknown fields become warnings or, with
    /// strict validation, a 400.
    fn normalize(
        s: &dyn Strategy,
        obj: Value,
        opts: &WriteOptions,
    ) -> ApiResult<(Value, Warnings)> {
        let d = s.descriptor();
        let cannot_handle = |e: &dyn std::fmt::Display| {
            ApiError::bad_request(format!(
                "{} in version \"{}\" cannot be handled as a {}: {e}",
                d.kind, d.version, d.kind
            ))
        };
        let out = s.normalize(obj.clone()).map_err(|e| cannot_handle(&e))?;
        let fv = opts.field_validation;
        let mut problems = Vec::new();
        if fv != FieldValidation::Ignore {
            let mut unknown = Vec::new();
            unknown_fields(&obj, &out, "", &mut unknown);
            problems.extend(unknown.iter().map(|f| format!("unknown field \"{f}\"")));
            problems.extend(
                opts.duplicate_fields
                    .iter()
                    .map(|f| format!("duplicate field \"{f}\"")),
            );
        }
        if fv == FieldValidation::Strict && !problems.is_empty() {
            return Err(cannot_handle(&format!(
                "strict decoding error: {}",
                problems.join(", ")
            )));
        }
        let mut out = out;
        s.fold_write_only_fields(&mut out);
        Ok((out, problems))
    }

    fn set_namespace(s: &dyn Strategy, obj: &mut Value, ns: Option<&str>) -> ApiResult<()> {
        let d = s.descriptor();
        let meta = meta::metadata_mut(obj);
        if !d.namespaced {
            meta.remove("namespace");
            return Ok(());
        }
        let ns = ns.unwrap_or("");
        match meta.get("namespace").and_then(Value::as_str) {
            Some(given) if !given.is_empty() && given != ns => Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            )),
            _ => {
                meta.insert("namespace".into(), Value::String(ns.to_string()));
                Ok(())
            }
        }
    }

    /// NamespaceLifecycle: content goes only into existing, active namespaces.
    async fn check_namespace_active(&self, s: &dyn Strategy, ns: Option<&str>) -> ApiResult<()> {
        if !s.descriptor().namespaced {
            return Ok(());
        }
        let ns = ns.unwrap_or("");
        let ns_strategy = self
            .find("", "v1", "namespaces")
            .expect("namespaces are served");
        match self
            .storage
            .get(&Registry::key(ns_strategy.as_ref(), None, ns))
            .await
        {
            Ok(kv) => {
                let obj = Registry::decode(&kv)?;
                if meta::deletion_timestamp(&obj).is_some()
                    || obj.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating")
                {
                    let mut e = ApiError::new(
                        Reason::Forbidden,
                        format!(
                            "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                            s.descriptor().resource,
                            ""
                        ),
                    );
                    e.details = Some(Box::new(crate::error::Details {
                        kind: s.descriptor().resource.to_string(),
                        causes: vec![
                            json!({"reason": "NamespaceTerminating", "message": format!("namespace {ns} is being terminated"), "field": "metadata.namespace"}),
                        ],
                        ..Default::default()
                    }));
                    return Err(e);
                }
                Ok(())
            }
            Err(StorageError::NotFound { .. }) => Err(ApiError::not_found("", "namespaces", ns)),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn create(
        &self,
        s: &dyn Strategy,
        ns: Option<&str>,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> ApiResult<(Value, Warnings)> {
        let d = s.descriptor();
        Self::check_type_meta(s, &mut obj)?;
        let (mut obj, warnings) = Self::normalize(s, obj, opts)?;
        Self::set_namespace(s, &mut obj, ns)?;
        {
            let m = meta::metadata_mut(&mut obj);
            if m.get("resourceVersion")
                .and_then(Value::as_str)
                .is_some_and(|rv| !rv.is_empty())
            {
                return Err(ApiError::bad_request(
                    "resourceVersion should not be set on objects to be created",
                ));
            }
            let name = m.get("name").and_then(Value::as_str).unwrap_or("");
            if name.is_empty() {
                if let Some(g) = m
                    .get("generateName")
                    .and_then(Value::as_str)
                    .filter(|g| !g.is_empty())
                {
                    let generated = format!("{g}{}", meta::generated_suffix());
                    m.insert("name".into(), Value::String(generated));
                }
            }
            m.insert("uid".into(), Value::String(meta::new_uid()));
            m.insert(
                "creationTimestamp".into(),
                Value::String(meta::now_rfc3339()),
            );
            m.remove("deletionTimestamp");
            m.remove("deletionGracePeriodSeconds");
            m.remove("generation");
        }
        let given_managed = meta::metadata_mut(&mut obj).remove("managedFields");
        if s.tracks_generation() {
            meta::metadata_mut(&mut obj).insert("generation".into(), json!(1));
        }
        s.prepare_for_create(&mut obj);
        s.default(&mut obj);
        if let (Some(mf), true) = (given_managed, opts.field_manager.is_some()) {
            meta::metadata_mut(&mut obj).insert("managedFields".into(), mf);
        }
        Self::record_managed_fields(s, None, &mut obj, Part::Main, opts);
        let name = meta::name(&obj).to_string();
        let errs = s.validate(&obj);
        if !errs.is_empty() {
            return Err(ApiError::invalid(d.group, d.kind, &name, &errs));
        }
        self.check_namespace_active(s, ns).await?;
        s.admit_create(self, &mut obj)?;
        if opts.dry_run {
            s.release(self, &obj);
            return Ok((obj, warnings));
        }
        let key = Registry::key(s, ns, &name);
        match self
            .storage
            .create(&key, Registry::encode_as(s, &obj))
            .await
        {
            Ok(kv) => {
                // The stored bytes are `obj` (in the stored version): answer
                // with it and the new revision instead of decoding them again.
                meta::metadata_mut(&mut obj).insert(
                    "resourceVersion".into(),
                    Value::String(kv.mod_revision.to_string()),
                );
                Ok((obj, warnings))
            }
            Err(e) => {
                s.release(self, &obj);
                Err(ApiError::from_storage(e, d.group, d.resource, &name))
            }
        }
    }

    pub async fn get(&self, s: &dyn Strategy, ns: Option<&str>, name: &str) -> ApiResult<Value> {
        let d = s.descriptor();
        let kv = self
            .storage
            .get(&Registry::key(s, ns, name))
            .await
            .map_err(|e| ApiError::from_storage(e, d.group, d.resource, name))?;
        Registry::decode_as(s, &kv)
    }

    /// A matcher for list and watch filtering; rejects unsupported fields.
    pub fn matcher(s: &Arc<dyn Strategy>, opts: &ListOptions) -> ApiResult<Matcher> {
        for f in opts.field_selector.fields() {
            if s.field_value(f, &Value::Null).is_none() {
                let d = s.descriptor();
                let kind = crate::selector::kind_id(d.group, d.kind);
                return Err(ApiError::bad_request(
                    crate::selector::field::unsupported_field_message(&kind, f),
                ));
            }
        }
        Ok(Matcher {
            strategy: s.clone(),
            labels: opts.label_selector.clone(),
            fields: opts.field_selector.clone(),
        })
    }

    /// One page of a list straight from storage, with its list metadata.
    async fn list_page(
        &self,
        s: &Arc<dyn Strategy>,
        ns: Option<&str>,
        opts: &ListOptions,
    ) -> ApiResult<(storage::ListResult, Map<String, Value>)> {
        let matcher = Arc::new(Self::matcher(s, opts)?);
        let prefix = Registry::prefix(s.as_ref(), ns);
        let mut sopts = storage::ListOptions {
            limit: opts.limit.filter(|l| *l > 0),
            ..Default::default()
        };
        if let Some(token) = &opts.continue_token {
            let (rv, start) = decode_continue(token)?;
            sopts.revision = Some(rv);
            sopts.start_after = Some(format!("{prefix}{start}"));
        } else if let Some(rv) = opts.resource_version {
            match opts.resource_version_match {
                Some(RvMatch::Exact) => sopts.revision = Some(rv),
                _ => {
                    let current = self.storage.current_revision().await?;
                    if rv > current {
                        return Err(StorageError::TooLargeRevision {
                            requested: rv,
                            current,
                        }
                        .into());
                    }
                }
            }
        }
        if !matcher.is_everything() {
            let m = matcher.clone();
            sopts.predicate = Some(Arc::new(move |kv: &KeyValue| m.matches_kv(kv)));
        }
        let result = self.storage.list(&prefix, sopts).await.map_err(|e| match e {
            StorageError::Expired { .. } if opts.continue_token.is_some() => ApiError::expired(
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.",
            ),
            other => other.into(),
        })?;
        let mut list_meta = Map::new();
        list_meta.insert(
            "resourceVersion".into(),
            Value::String(result.revision.to_string()),
        );
        if result.more {
            if let Some(last) = result.items.last() {
                let start = last.key.strip_prefix(&prefix).unwrap_or(&last.key);
                list_meta.insert(
                    "continue".into(),
                    Value::String(encode_continue(result.revision, start)),
                );
            }
        }
        Ok((result, list_meta))
    }

    pub async fn list(
        &self,
        s: &Arc<dyn Strategy>,
        ns: Option<&str>,
        opts: &ListOptions,
    ) -> ApiResult<Value> {
        let d = s.descriptor();
        let (result, list_meta) = self.list_page(s, ns, opts).await?;
        let mut items = Vec::with_capacity(result.items.len());
        for kv in &result.items {
            let mut obj = Registry::decode_as(s.as_ref(), kv)?;
            // Lists carry kind/apiVersion on the list, not on each item.
            if let Some(m) = obj.as_object_mut() {
                m.remove("kind");
                m.remove("apiVersion");
            }
            items.push(obj);
        }
        Ok(json!({
            "kind": format!("{}List", d.kind),
            "apiVersion": d.group_version(),
            "metadata": list_meta,
            "items": items,
        }))
    }

    /// The JSON body of a list, built from the stored bytes without decoding
    /// them: each item gets its `resourceVersion` spliced in. Kinds served
    /// through a conversion take the decoding path.
    pub async fn list_json(
        &self,
        s: &Arc<dyn Strategy>,
        ns: Option<&str>,
        opts: &ListOptions,
    ) -> ApiResult<Vec<u8>> {
        let d = s.descriptor();
        if s.storage_resource() != (d.group, d.resource) {
            let list = self.list(s, ns, opts).await?;
            return Ok(serde_json::to_vec(&list).expect("JSON values always serialize"));
        }
        let (result, list_meta) = self.list_page(s, ns, opts).await?;
        let size: usize = result.items.iter().map(|kv| kv.value.len() + 32).sum();
        let mut out = Vec::with_capacity(size + 256);
        out.extend_from_slice(b"{\"kind\":");
        serde_json::to_writer(&mut out, &format!("{}List", d.kind)).expect("write to Vec");
        out.extend_from_slice(b",\"apiVersion\":");
        serde_json::to_writer(&mut out, &d.group_version()).expect("write to Vec");
        out.extend_from_slice(b",\"metadata\":");
        serde_json::to_writer(&mut out, &list_meta).expect("write to Vec");
        out.extend_from_slice(b",\"items\":[");
        for (i, kv) in result.items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            if !super::splice::append_with_resource_version(&mut out, &kv.value, kv.mod_revision) {
                let obj = Registry::decode_as(s.as_ref(), kv)?;
                serde_json::to_writer(&mut out, &obj).expect("write to Vec");
            }
        }
        out.extend_from_slice(b"]}");
        Ok(out)
    }

    /// Runs the update loop for a change computed from the current object.
    /// `change` returns the new object; everything common to PUT and PATCH
    /// (immutable metadata, generation, status rules, validation, finalizer
    /// completion) happens here.
    pub(crate) async fn update_with<F>(
        &self,
        s: &dyn Strategy,
        ns: Option<&str>,
        name: &str,
        part: Part,
        opts: &WriteOptions,
        mut change: F,
    ) -> ApiResult<Value>
    where
        F: FnMut(&Value) -> ApiResult<Value> + Send,
    {
        let d = s.descriptor();
        let key = Registry::key(s, ns, name);
        let failure: Mutex<Option<ApiError>> = Mutex::new(None);
        let result_obj: Mutex<Option<Value>> = Mutex::new(None);
        let fail = |e: ApiError| {
            *failure.lock().expect("lock") = Some(e);
            StorageError::Aborted(String::new())
        };
        let step = |kv: &KeyValue| -> Result<Update, StorageError> {
            let old = Registry::decode_as(s, kv).map_err(fail)?;
            let mut new = change(&old).map_err(fail)?;
            let requested_rv = meta::str_at(&new, &["metadata", "resourceVersion"])
                .unwrap_or("")
                .to_string();
            if !requested_rv.is_empty() && requested_rv != kv.mod_revision.to_string() {
                return Err(StorageError::Conflict {
                    key: kv.key.clone(),
                    expected: 0,
                    actual: kv.mod_revision,
                });
            }
            if meta::name(&new) != name {
                return Err(fail(ApiError::bad_request(format!(
                    "the name of the object ({}) does not match the name on the URL ({name})",
                    meta::name(&new)
                ))));
            }
            match part {
                Part::Main => s.prepare_for_update(&mut new, &old),
                Part::Status => s.prepare_for_status_update(&mut new, &old),
                Part::Internal => {}
            }
            {
                let m = meta::metadata_mut(&mut new);
                for f in [
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "generation",
                    "namespace",
                ] {
                    match old.get("metadata").and_then(|om| om.get(f)) {
                        Some(v) => {
                            m.insert(f.into(), v.clone());
                        }
                        None => {
                            m.remove(f);
                        }
                    }
                }
                m.remove("resourceVersion");
            }
            s.default(&mut new);
            if s.tracks_generation() && s.generation_changed(&new, &old) {
                let g = old
                    .pointer("/metadata/generation")
                    .and_then(Value::as_i64)
                    .unwrap_or(0);
                meta::metadata_mut(&mut new).insert("generation".into(), json!(g + 1));
            }
            Self::record_managed_fields(s, Some(&old), &mut new, part, opts);
            let errs = if part == Part::Internal {
                s.validate(&new)
            } else {
                s.validate_update(&new, &old)
            };
            if !errs.is_empty() {
                return Err(fail(ApiError::invalid(d.group, d.kind, name, &errs)));
            }
            s.admit_update(self, &mut new, &old).map_err(fail)?;
            let finished = meta::deletion_timestamp(&old).is_some()
                && meta::finalizers(&new).is_empty()
                && (d.kind != "Namespace"
                    || new
                        .pointer("/spec/finalizers")
                        .and_then(Value::as_array)
                        .is_none_or(|f| f.is_empty()));
            let mut old_cmp = old.clone();
            if let Some(m) = old_cmp.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("resourceVersion");
            }
            *result_obj.lock().expect("lock") = Some(new.clone());
            if finished {
                return Ok(Update::Delete);
            }
            if new == old_cmp {
                // Identical content: store the current bytes so nothing is written.
                return Ok(Update::Write(kv.value.to_vec()));
            }
            Ok(Update::Write(Registry::encode_as(s, &new)))
        };
        if opts.dry_run {
            let kv = self
                .storage
                .get(&key)
                .await
                .map_err(|e| ApiError::from_storage(e, d.group, d.resource, name))?;
            let mut step = step;
            return match step(&kv) {
                Ok(Update::Delete) => Ok(Registry::decode_as(s, &kv)?),
                Ok(Update::Write(_)) => {
                    let mut obj = result_obj.lock().expect("lock").take().expect("set");
                    meta::metadata_mut(&mut obj).insert(
                        "resourceVersion".into(),
                        Value::String(kv.mod_revision.to_string()),
                    );
                    Ok(obj)
                }
                Err(e) => Err(failure
                    .lock()
                    .expect("lock")
                    .take()
                    .unwrap_or_else(|| ApiError::from_storage(e, d.group, d.resource, name))),
            };
        }
        match storage::guaranteed_update(
            self.storage.as_ref(),
            &key,
            &Preconditions::default(),
            step,
        )
        .await
        {
            Ok((kv, deleted)) => {
                if deleted {
                    let obj = Registry::decode_as(s, &kv)?;
                    s.release(self, &obj);
                    return Ok(obj);
                }
                Registry::decode_as(s, &kv)
            }
            Err(e) => Err(failure
                .lock()
                .expect("lock")
                .take()
                .unwrap_or_else(|| ApiError::from_storage(e, d.group, d.resource, name))),
        }
    }

    pub async fn update(
        &self,
        s: &dyn Strategy,
        ns: Option<&str>,
        name: &str,
        part: Part,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> ApiResult<(Value, Warnings)> {
        Self::check_type_meta(s, &mut obj)?;
        let (mut obj, warnings) = Self::normalize(s, obj, opts)?;
        Self::set_namespace(s, &mut obj, ns)?;
        let exists = match self.storage.get(&Registry::key(s, ns, name)).await {
            Ok(_) => true,
            Err(StorageError::NotFound { .. }) => false,
            Err(e) => return Err(e.into()),
        };
        if !exists && s.allow_create_on_update() && part == Part::Main {
            if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("resourceVersion");
            }
            return self.create(s, ns, obj, opts).await;
        }
        let out = self
            .update_with(s, ns, name, part, opts, |_| Ok(obj.clone()))
            .await?;
        Ok((out, warnings))
    }

    pub async fn patch(
        &self,
        s: &dyn Strategy,
        ns: Option<&str>,
        name: &str,
        part: Part,
        (patch_type, patch_body): (PatchType, &Value),
        opts: &WriteOptions,
    ) -> ApiResult<(Value, Warnings)> {
        let warnings = Mutex::new(Vec::new());
        let out = self
            .update_with(s, ns, name, part, opts, |old| {
                let patched = patch::apply(patch_type, old, patch_body)?;
                let mut patched = patched;
                Self::check_type_meta(s, &mut patched)?;
                let (mut obj, w) = Self::normalize(s, patched, opts)?;
                Self::set_namespace(s, &mut obj, ns)?;
                // The patch's own resourceVersion (if any) is a precondition;
                // the one copied from the current object is not.
                let patch_rv = patch_body
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str);
                if patch_rv.is_none() {
                    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                        m.remove("resourceVersion");
                    }
                }
                *warnings.lock().expect("lock") = w;
                Ok(obj)
            })
            .await?;
        Ok((out, warnings.into_inner().expect("lock")))
    }

    /// Records the write in `managedFields` (an `Update` by the request's
    /// manager), for every create, update and patch of the main resource or
    /// `status`, and for internal writes a client asked for through a named
    /// subresource (`namespaces/finalize`). Other server-internal writes
    /// (binding, eviction, as upstream) and applies (which computed theirs)
    /// are left alone.
    fn record_managed_fields(
        s: &dyn Strategy,
        old: Option<&Value>,
        new: &mut Value,
        part: Part,
        opts: &WriteOptions,
    ) {
        let Some(manager) = opts.field_manager.as_deref() else {
            return;
        };
        if opts.applied || (part == Part::Internal && opts.subresource.is_empty()) {
            return;
        }
        let d = s.descriptor();
        let gv = d.group_version();
        let now = meta::now_rfc3339();
        let w = Writer {
            manager,
            subresource: if part == Part::Status {
                "status"
            } else {
                opts.subresource
            },
            api_version: &gv,
            now: &now,
        };
        managed::update(old, new, &w, Ty::root(&gv, d.kind));
    }

    /// Server-side apply (`application/apply-patch+yaml`): merges `config`
    /// into the live object as `opts.field_manager`, or creates the object
    /// from it. Returns the object, warnings, and whether it was created.
    pub async fn apply(
        &self,
        s: &dyn Strategy,
        ns: Option<&str>,
        name: &str,
        part: Part,
        mut config: Value,
        opts: &WriteOptions,
    ) -> ApiResult<(Value, Warnings, bool)> {
        let d = s.descriptor();
        Self::check_type_meta(s, &mut config)?;
        if config
            .pointer("/metadata/managedFields")
            .is_some_and(|v| !v.is_null())
        {
            return Err(ApiError::bad_request("metadata.managedFields must be nil"));
        }
        let given_name = meta::name(&config).to_string();
        if given_name.is_empty() {
            meta::metadata_mut(&mut config).insert("name".into(), json!(name));
        } else if given_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({given_name}) does not match the name on the URL ({name})"
            )));
        }
        Self::set_namespace(s, &mut config, ns)?;
        let gv = d.group_version();
        let ty = Ty::root(&gv, d.kind);
        let now = meta::now_rfc3339();
        let w = Writer {
            manager: opts.field_manager.as_deref().unwrap_or(""),
            subresource: if part == Part::Status { "status" } else { "" },
            api_version: &gv,
            now: &now,
        };
        let ns_name = format!("{}/{name}", ns.unwrap_or(""));
        let kind_id = format!("{gv}, Kind={}", d.kind);
        let failed = |e: ApplyError| match e {
            ApplyError::Conflicts(c) => c.into_error(),
            ApplyError::Invalid(why) => ApiError::bad_request(format!(
                "failed to create typed patch object ({ns_name}; {kind_id}): {why}"
            )),
        };
        let applied_opts = WriteOptions {
            applied: true,
            ..opts.clone()
        };
        let exists = match self.storage.get(&Registry::key(s, ns, name)).await {
            Ok(_) => true,
            Err(StorageError::NotFound { .. }) => false,
            Err(e) => return Err(e.into()),
        };
        if !exists && part == Part::Main {
            let mut obj = managed::apply(None, &config, &w, opts.force, ty).map_err(failed)?;
            if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("resourceVersion");
            }
            let (out, warnings) = self.create(s, ns, obj, &applied_opts).await?;
            return Ok((out, warnings, true));
        }
        let config_rv = config.pointer("/metadata/resourceVersion").is_some();
        let warnings = Mutex::new(Vec::new());
        let out = self
            .update_with(s, ns, name, part, &applied_opts, |old| {
                let mut merged =
                    managed::apply(Some(old), &config, &w, opts.force, ty).map_err(failed)?;
                Self::check_type_meta(s, &mut merged)?;
                let (mut obj, warn) = Self::normalize(s, merged, opts)?;
                Self::set_namespace(s, &mut obj, ns)?;
                if !config_rv {
                    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
                        m.remove("resourceVersion");
                    }
                }
                *warnings.lock().expect("lock") = warn;
                Ok(obj)
            })
            .await?;
        Ok((out, warnings.into_inner().expect("lock"), false))
    }

    /// Deletes one object, honouring preconditions, finalizers and graceful
    /// deletion. Returns the object as it was deleted (or as marked), and
    /// whether it is gone now (a dry run says not: like upstream, it answers
    /// with the object).
    pub async fn delete(
        &self,
        s: &dyn Strategy,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> ApiResult<(Value, bool)> {
        let d = s.descriptor();
        if d.kind == "Namespace" && SYSTEM_NAMESPACES.contains(&name) {
            return Err(ApiError::new(
                Reason::Forbidden,
                format!("namespaces \"{name}\" is forbidden: this namespace may not be deleted"),
            ));
        }
        let key = Registry::key(s, ns, name);
        let pre = Preconditions {
            uid: opts.uid.clone(),
            resource_version: opts.resource_version,
        };
        let now = meta::now_rfc3339();
        let marked: Mutex<bool> = Mutex::new(false);
        let step = |kv: &KeyValue| -> Result<Update, StorageError> {
            let obj = Registry::decode_as(s, kv).map_err(|e| StorageError::Internal(e.message))?;
            let grace = graceful_period(d.kind, &obj, opts.grace_period_seconds);
            // Orphan and Foreground propagation are finalizers the garbage
            // collector acts on (a namespace's deletion has its own).
            let gc_finalizer = match opts.propagation {
                _ if d.kind == "Namespace" => None,
                Some(Propagation::Foreground) => Some(("foregroundDeletion", "orphan")),
                Some(Propagation::Orphan) => Some(("orphan", "foregroundDeletion")),
                _ => None,
            };
            let mut finalizers = meta::finalizers(&obj);
            let finalizers_changed = match gc_finalizer {
                Some((add, replaced)) if !finalizers.iter().any(|f| f == add) => {
                    finalizers.retain(|f| f != replaced);
                    finalizers.push(add.to_string());
                    true
                }
                _ => false,
            };
            let pending_finalizers = !finalizers.is_empty()
                || (d.kind == "Namespace"
                    && obj
                        .pointer("/spec/finalizers")
                        .and_then(Value::as_array)
                        .is_some_and(|f| !f.is_empty()));
            if !pending_finalizers && grace == 0 {
                return Ok(Update::Delete);
            }
            *marked.lock().expect("lock") = true;
            let mut new = obj.clone();
            let m = meta::metadata_mut(&mut new);
            m.remove("resourceVersion");
            if finalizers_changed {
                m.insert("finalizers".into(), json!(finalizers));
            }
            if !m.contains_key("deletionTimestamp") {
                let at = if grace > 0 {
                    rfc3339_after(grace)
                } else {
                    now.clone()
                };
                m.insert("deletionTimestamp".into(), Value::String(at));
                m.insert("deletionGracePeriodSeconds".into(), json!(grace));
            } else if grace == 0 && pending_finalizers {
                m.insert("deletionGracePeriodSeconds".into(), json!(0));
            } else if grace == 0 && !finalizers_changed {
                return Ok(Update::Delete);
            }
            if d.kind == "Namespace" {
                new["status"]["phase"] = json!("Terminating");
            }
            Ok(Update::Write(Registry::encode_as(s, &new)))
        };
        if opts.dry_run {
            let kv = self
                .storage
                .get(&key)
                .await
                .map_err(|e| ApiError::from_storage(e, d.group, d.resource, name))?;
            pre.check(&kv)
                .map_err(|e| ApiError::from_storage(e, d.group, d.resource, name))?;
            return Ok((Registry::decode_as(s, &kv)?, false));
        }
        let (kv, deleted) = storage::guaranteed_update(self.storage.as_ref(), &key, &pre, step)
            .await
            .map_err(|e| ApiError::from_storage(e, d.group, d.resource, name))?;
        let obj = Registry::decode_as(s, &kv)?;
        if deleted {
            s.release(self, &obj);
        } else if d.kind == "Namespace" && *marked.lock().expect("lock") {
            self.namespace_deleted.notify_one();
        }
        Ok((obj, deleted))
    }

    pub async fn delete_collection(
        &self,
        s: &Arc<dyn Strategy>,
        ns: Option<&str>,
        list_opts: &ListOptions,
        opts: &DeleteOptions,
    ) -> ApiResult<Value> {
        let mut list = self.list(s, ns, list_opts).await?;
        let items = match list.get_mut("items").map(Value::take) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        let mut deleted = Vec::with_capacity(items.len());
        for item in items {
            let item_ns = meta::namespace(&item).to_string();
            let item_ns = (!item_ns.is_empty()).then_some(item_ns);
            match self
                .delete(s.as_ref(), item_ns.as_deref(), meta::name(&item), opts)
                .await
            {
                // Like upstream, the answer lists the items as they were
                // listed, not as each delete left them.
                Ok(_) => deleted.push(item),
                Err(e) if e.reason == Reason::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        let d = s.descriptor();
        Ok(json!({
            "kind": format!("{}List", d.kind),
            "apiVersion": d.group_version(),
            "metadata": {"resourceVersion": list["metadata"]["resourceVersion"].clone()},
            "items": deleted,
        }))
    }

    /// The current revision, for list responses of computed kinds.
    pub async fn current_revision(&self) -> ApiResult<Revision> {
        Ok(self.storage.current_revision().await?)
    }
}

/// What a DELETE that removed `obj` at once answers for a kind that does
/// not return deleted objects: upstream's `Status` naming it, with the
/// resource (not the kind) in `details.kind`.
pub fn deleted_status(d: &openapi::ResourceDescriptor, obj: &Value) -> Value {
    let mut details = Map::new();
    details.insert("name".into(), json!(meta::name(obj)));
    if !d.group.is_empty() {
        details.insert("group".into(), json!(d.group));
    }
    details.insert("kind".into(), json!(d.resource));
    if let Some(uid) = obj.pointer("/metadata/uid") {
        details.insert("uid".into(), uid.clone());
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })
}

/// How long a delete waits: pods bound to a node get their grace period so
/// the kubelet can stop them; everything else goes at once.
fn graceful_period(kind: &str, obj: &Value, requested: Option<i64>) -> i64 {
    if kind != "Pod" {
        return 0;
    }
    let bound = meta::str_at(obj, &["spec", "nodeName"]).is_some_and(|n| !n.is_empty());
    let phase = meta::str_at(obj, &["status", "phase"]).unwrap_or("");
    if !bound || phase == "Succeeded" || phase == "Failed" {
        return 0;
    }
    let default = obj
        .pointer("/spec/terminationGracePeriodSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(30);
    requested.unwrap_or(default).max(0)
}

fn rfc3339_after(seconds: i64) -> String {
    meta::format_time(time::OffsetDateTime::now_utc() + time::Duration::seconds(seconds))
}

/// Label and field selectors bound to a kind.
pub struct Matcher {
    strategy: Arc<dyn Strategy>,
    labels: crate::selector::label::LabelSelector,
    fields: crate::selector::field::FieldSelector,
}

impl Matcher {
    pub fn is_everything(&self) -> bool {
        self.labels.is_empty() && self.fields.fields().next().is_none()
    }

    pub fn matches(&self, obj: &Value) -> bool {
        let empty = Map::new();
        if !self.labels.matches(meta::labels(obj).unwrap_or(&empty)) {
            return false;
        }
        self.fields
            .matches(|f| self.strategy.field_value(f, obj).flatten())
    }

    pub fn matches_kv(&self, kv: &KeyValue) -> bool {
        serde_json::from_slice::<Value>(&kv.value)
            .map(|o| self.matches(&self.strategy.stored_to_served(o)))
            .unwrap_or(false)
    }

    pub fn strategy(&self) -> &dyn Strategy {
        self.strategy.as_ref()
    }
}

/// Continue tokens: base64 of a small JSON document holding the snapshot
/// revision and the last returned key (relative to the list prefix).
pub fn encode_continue(rv: Revision, start: &str) -> String {
    use base64::Engine;
    let doc = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": start});
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(doc.to_string())
}

pub fn decode_continue(token: &str) -> ApiResult<(Revision, String)> {
    use base64::Engine;
    let bad = || ApiError::bad_request(format!("continue key is not valid: {token}"));
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| bad())?;
    let doc: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rv = doc
        .get("rv")
        .and_then(Value::as_u64)
        .filter(|r| *r > 0)
        .ok_or_else(bad)?;
    let start = doc.get("start").and_then(Value::as_str).ok_or_else(bad)?;
    if start.contains('/') && start.split('/').any(|p| p == ".." || p == ".") {
        return Err(bad());
    }
    Ok((rv, start.to_string()))
}

/// Paths present (non-null) in `input` but dropped by the typed round trip.
fn unknown_fields(input: &Value, output: &Value, path: &str, out: &mut Vec<String>) {
    let mut segments = Vec::new();
    if !path.is_empty() {
        segments.push(Step::Key(path.into()));
    }
    walk_unknown(input, output, &mut segments, out);
}

fn walk_unknown<'a>(
    input: &'a Value,
    output: &Value,
    path: &mut Vec<Step<'a>>,
    out: &mut Vec<String>,
) {
    match (input, output) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                path.push(Step::Key(k.into()));
                match b.get(k) {
                    Some(bv) => walk_unknown(v, bv, path, out),
                    None if !v.is_null() => out.push(render(path, "")),
                    None => {}
                }
                path.pop();
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
                path.push(Step::Index(i));
                walk_unknown(x, y, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_token_round_trips_and_rejects_garbage() {
        let t = encode_continue(42, "ns/name");
        assert_eq!(decode_continue(&t).unwrap(), (42, "ns/name".to_string()));
        assert_eq!(decode_continue("%%%").unwrap_err().code(), 400);
        assert_eq!(
            decode_continue(&encode_continue(1, "../x"))
                .unwrap_err()
                .code(),
            400
        );
    }

    #[test]
    fn unknown_fields_are_reported_with_paths() {
        let input = json!({"spec": {"containers": [{"name": "a", "bogus": 1}], "extra": true}});
        let output = json!({"spec": {"containers": [{"name": "a"}]}});
        let mut out = Vec::new();
        unknown_fields(&input, &output, "", &mut out);
        assert_eq!(out, ["spec.containers[0].bogus", "spec.extra"]);
    }

    #[test]
    fn only_bound_pods_are_deleted_gracefully() {
        let unbound = json!({"spec": {}, "status": {"phase": "Pending"}});
        assert_eq!(graceful_period("Pod", &unbound, None), 0);
        let bound = json!({"spec": {"nodeName": "n1", "terminationGracePeriodSeconds": 10}, "status": {"phase": "Running"}});
        assert_eq!(graceful_period("Pod", &bound, None), 10);
        assert_eq!(graceful_period("Pod", &bound, Some(0)), 0);
        assert_eq!(graceful_period("ConfigMap", &bound, Some(5)), 0);
    }
}
