//! ConfigMap and Secret validation: key syntax, the 1 MiB size cap, the `immutable`
//! flag, and the keys each built-in Secret type requires.

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::validation::field_error::{FieldError, FieldErrors};
use crate::validation::meta::{validate_object_meta, validate_object_meta_update, FIELD_IMMUTABLE};
use crate::validation::names::{is_config_map_key, NameRule};
use crate::validation::value::{boolean, key, obj, str_of, sub};

/// Upper bound on the summed size of a ConfigMap's or Secret's values.
pub const MAX_SECRET_SIZE: usize = 1024 * 1024;

const IMMUTABLE_WHEN_SET: &str = "field is immutable when `immutable` is set";

/// Decodes a base64 `data` value; on failure returns Go's error wording.
fn decode(v: &Value) -> Result<Vec<u8>, String> {
    let s = v.as_str().unwrap_or_default();
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| match e {
            base64::DecodeError::InvalidByte(at, _)
            | base64::DecodeError::InvalidLastSymbol(at, _) => {
                format!("illegal base64 data at input byte {at}")
            }
            _ => format!("illegal base64 data at input byte {}", s.len()),
        })
}

/// Validates a ConfigMap.
pub fn validate_config_map(cm: &Value) -> FieldErrors {
    let mut errs = validate_object_meta(
        sub(cm, "metadata"),
        true,
        NameRule::DnsSubdomain,
        "metadata",
    );
    let empty = Map::new();
    let data = obj(cm, "data").unwrap_or(&empty);
    let binary = obj(cm, "binaryData").unwrap_or(&empty);
    let mut total = 0usize;
    for (k, v) in data {
        let p = key("data", k);
        for msg in is_config_map_key(k) {
            errs.push(FieldError::invalid(&p, k.as_str(), &msg));
        }
        if binary.contains_key(k) {
            errs.push(FieldError::invalid(
                &p,
                k.as_str(),
                "duplicate of key present in binaryData",
            ));
        }
        total += v.as_str().map_or(0, str::len);
    }
    for (k, v) in binary {
        let p = key("binaryData", k);
        for msg in is_config_map_key(k) {
            errs.push(FieldError::invalid(&p, k.as_str(), &msg));
        }
        match decode(v) {
            Ok(bytes) => total += bytes.len(),
            Err(msg) => errs.push(FieldError::invalid(&p, "<binary data>", &msg)),
        }
    }
    if total > MAX_SECRET_SIZE {
        // The empty path means "the whole object", as upstream reports it.
        errs.push(FieldError::too_long("", MAX_SECRET_SIZE));
    }
    errs
}

/// Validates a ConfigMap update; an immutable ConfigMap's contents are frozen.
pub fn validate_config_map_update(new: &Value, old: &Value) -> FieldErrors {
    let mut errs = validate_object_meta_update(sub(new, "metadata"), sub(old, "metadata"));
    if boolean(old, "immutable") == Some(true) {
        if boolean(new, "immutable") != Some(true) {
            errs.push(FieldError::forbidden("immutable", IMMUTABLE_WHEN_SET));
        }
        if non_empty(new, "data") != non_empty(old, "data") {
            errs.push(FieldError::forbidden("data", IMMUTABLE_WHEN_SET));
        }
        if non_empty(new, "binaryData") != non_empty(old, "binaryData") {
            errs.push(FieldError::forbidden("binaryData", IMMUTABLE_WHEN_SET));
        }
    }
    errs.extend(validate_config_map(new));
    errs
}

/// A map field where absent, null and `{}` all read as "empty".
fn non_empty<'a>(v: &'a Value, field: &str) -> Option<&'a Map<String, Value>> {
    obj(v, field).filter(|m| !m.is_empty())
}

/// Secret keys with their decoded sizes, or the decoding error.
type SecretEntries = Vec<(String, Result<usize, String>)>;

/// Secret data as the API server sees it: `data` (base64) merged with `stringData`
/// (plain text, which wins on conflicts), as the v1 conversion does before validation.
fn secret_data(secret: &Value) -> (SecretEntries, Map<String, Value>) {
    let mut out: std::collections::BTreeMap<String, Result<usize, String>> = Default::default();
    if let Some(d) = obj(secret, "data") {
        for (k, v) in d {
            out.insert(k.clone(), decode(v).map(|b| b.len()));
        }
    }
    if let Some(d) = obj(secret, "stringData") {
        for (k, v) in d {
            out.insert(k.clone(), Ok(v.as_str().map_or(0, str::len)));
        }
    }
    let keys: Map<String, Value> = out.keys().map(|k| (k.clone(), Value::Null)).collect();
    (out.into_iter().collect(), keys)
}

/// Validates a Secret, including the keys its `type` requires.
pub fn validate_secret(secret: &Value) -> FieldErrors {
    let mut errs = validate_object_meta(
        sub(secret, "metadata"),
        true,
        NameRule::DnsSubdomain,
        "metadata",
    );
    let (entries, keys) = secret_data(secret);
    let mut total = 0usize;
    for (k, len) in &entries {
        for msg in is_config_map_key(k) {
            errs.push(FieldError::invalid(key("data", k), k.as_str(), &msg));
        }
        match len {
            Ok(n) => total += n,
            Err(msg) => errs.push(FieldError::invalid(
                key("data", k),
                "<secret contents redacted>",
                msg,
            )),
        }
    }
    if total > MAX_SECRET_SIZE {
        errs.push(FieldError::too_long("data", MAX_SECRET_SIZE));
    }
    let has = |k: &str| keys.contains_key(k);
    let required = |k: &str| FieldError::required(key("data", k), "");
    match str_of(secret, "type") {
        "kubernetes.io/service-account-token" => {
            let name = obj(sub(secret, "metadata"), "annotations")
                .and_then(|a| a.get("kubernetes.io/service-account.name"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            if name.is_empty() {
                errs.push(FieldError::required(
                    "metadata.annotations[kubernetes.io/service-account.name]",
                    "",
                ));
            }
        }
        "kubernetes.io/dockercfg" => {
            errs.extend(require_json(secret, ".dockercfg", has(".dockercfg")))
        }
        "kubernetes.io/dockerconfigjson" => errs.extend(require_json(
            secret,
            ".dockerconfigjson",
            has(".dockerconfigjson"),
        )),
        // Either may be empty, but at least one must be present.
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            errs.push(required("username"));
            errs.push(required("password"));
        }
        "kubernetes.io/ssh-auth" => {
            let present = entries
                .iter()
                .any(|(k, l)| k == "ssh-privatekey" && l.as_ref().is_ok_and(|n| *n > 0));
            if !present {
                errs.push(required("ssh-privatekey"));
            }
        }
        "kubernetes.io/tls" => {
            if !has("tls.crt") {
                errs.push(required("tls.crt"));
            }
            if !has("tls.key") {
                errs.push(required("tls.key"));
            }
        }
        _ => {}
    }
    errs
}

/// A docker config key must be present and hold a JSON object.
fn require_json(secret: &Value, k: &str, present: bool) -> FieldErrors {
    if !present {
        return vec![FieldError::required(key("data", k), "")];
    }
    let raw: Option<Vec<u8>> = match obj(secret, "stringData").and_then(|d| d.get(k)) {
        Some(v) => Some(v.as_str().unwrap_or_default().as_bytes().to_vec()),
        None => obj(secret, "data")
            .and_then(|d| d.get(k))
            .and_then(|v| decode(v).ok()),
    };
    let Some(raw) = raw else { return Vec::new() };
    match serde_json::from_slice::<Map<String, Value>>(&raw) {
        Ok(_) => Vec::new(),
        Err(e) => vec![FieldError::invalid(
            key("data", k),
            "<secret contents redacted>",
            &e.to_string(),
        )],
    }
}

/// Validates a Secret update: the type never changes, and an immutable Secret's data
/// is frozen.
pub fn validate_secret_update(new: &Value, old: &Value) -> FieldErrors {
    let mut errs = validate_object_meta_update(sub(new, "metadata"), sub(old, "metadata"));
    let (nt, ot) = (str_of(new, "type"), str_of(old, "type"));
    if nt != ot {
        errs.push(FieldError::invalid("type", nt, FIELD_IMMUTABLE));
    }
    if boolean(old, "immutable") == Some(true) {
        if boolean(new, "immutable") != Some(true) {
            errs.push(FieldError::forbidden("immutable", IMMUTABLE_WHEN_SET));
        }
        // stringData is write-only: any of it would change data.
        let changed = non_empty(new, "data") != non_empty(old, "data")
            || non_empty(new, "stringData").is_some();
        if changed {
            errs.push(FieldError::forbidden("data", IMMUTABLE_WHEN_SET));
        }
    }
    errs.extend(validate_secret(new));
    errs
}
