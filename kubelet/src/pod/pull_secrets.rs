//! Registry credentials from `imagePullSecrets`: the `.dockerconfigjson`
//! (`kubernetes.io/dockerconfigjson`) and `.dockercfg`
//! (`kubernetes.io/dockercfg`) formats, matched to an image's registry the
//! way the kubelet's credential keyring matches them (scheme and path of a
//! key are ignored; `docker.io` also answers to the legacy index URL).

use std::collections::BTreeMap;

use base64::Engine;
use runtime::types::RegistryAuth;
use serde_json::Value;

/// The registry host a key of a docker config names.
fn key_host(key: &str) -> String {
    let no_scheme = key.split_once("://").map(|(_, rest)| rest).unwrap_or(key);
    let host = no_scheme.split('/').next().unwrap_or("");
    match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        h => h.to_string(),
    }
}

fn entry_auth(entry: &Value) -> Option<RegistryAuth> {
    let user = entry["username"].as_str().unwrap_or("");
    let pass = entry["password"].as_str().unwrap_or("");
    if !user.is_empty() {
        return Some(RegistryAuth::Basic {
            username: user.into(),
            password: pass.into(),
        });
    }
    if let Some(auth) = entry["auth"].as_str() {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth)
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (u, p) = text.split_once(':')?;
        return Some(RegistryAuth::Basic {
            username: u.into(),
            password: p.into(),
        });
    }
    entry["registrytoken"]
        .as_str()
        .or_else(|| entry["identitytoken"].as_str())
        .map(|t| RegistryAuth::Bearer(t.to_string()))
}

/// The credentials in one secret's data (already base64-decoded), keyed
/// by registry host.
pub fn credentials(data: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, RegistryAuth> {
    let mut out = BTreeMap::new();
    let parse = |bytes: &Vec<u8>| serde_json::from_slice::<Value>(bytes).ok();
    let entries = if let Some(v) = data.get(".dockerconfigjson").and_then(parse) {
        v["auths"].as_object().cloned()
    } else {
        data.get(".dockercfg")
            .and_then(parse)
            .and_then(|v| v.as_object().cloned())
    };
    for (key, entry) in entries.into_iter().flatten() {
        if let Some(auth) = entry_auth(&entry) {
            out.entry(key_host(&key)).or_insert(auth);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_config_json_and_legacy_keys() {
        let json = br#"{"auths":{"https://127.0.0.1:5000/v1/":{"auth":"dXNlcjpwYXNz"},
            "https://index.docker.io/v1/":{"username":"u","password":"p"}}}"#;
        let data = BTreeMap::from([(".dockerconfigjson".to_string(), json.to_vec())]);
        let creds = credentials(&data);
        assert_eq!(
            creds["127.0.0.1:5000"],
            RegistryAuth::Basic {
                username: "user".into(),
                password: "pass".into()
            }
        );
        assert_eq!(
            creds["docker.io"],
            RegistryAuth::Basic {
                username: "u".into(),
                password: "p".into()
            }
        );
        let cfg = br#"{"reg.example:443":{"auth":"YTpi"}}"#;
        let data = BTreeMap::from([(".dockercfg".to_string(), cfg.to_vec())]);
        assert_eq!(
            credentials(&data)["reg.example:443"],
            RegistryAuth::Basic {
                username: "a".into(),
                password: "b".into()
            }
        );
        assert!(credentials(&BTreeMap::new()).is_empty());
    }
}
