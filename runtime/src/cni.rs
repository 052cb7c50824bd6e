//! A CNI client: attaches a pod sandbox's network namespace to the node's
//! pod network by running the standard plugins (bridge with host-local
//! IPAM, then portmap; loopback for `lo`), as the CNI spec (1.0.0, also
//! 0.4.0) describes: plugin binaries found in `plugin_dir`, parameters in
//! `CNI_*` environment variables, the network configuration on stdin, a
//! JSON result or error on stdout.
//!
//! This module owns the network configuration list it generates and a
//! cache of each attachment's ADD result under `state_dir`, so DEL and
//! CHECK see what ADD did even after this process restarts. It does not
//! create or remove network namespaces ([`crate::netns`] does) and
//! changes no host settings except enabling IP forwarding, without which
//! no pod traffic leaves the node.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use crate::error::{ErrorKind, Result, RuntimeError};
use crate::netns::is_namespace_file;
use crate::types::{PortMapping, Protocol};

/// The plugins the generated configuration uses; all must be installed.
const REQUIRED_PLUGINS: [&str; 4] = ["bridge", "host-local", "portmap", "loopback"];

/// Used when the process has no PATH; plugins run `iptables`.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How the node's pod network is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniConfig {
    /// Where the plugin binaries are (Debian: /usr/lib/cni).
    pub plugin_dir: PathBuf,
    /// Result cache and host-local's allocations live here.
    pub state_dir: PathBuf,
    /// The CNI network name; part of iptables comments and chain hashes.
    pub network_name: String,
    /// The Linux bridge pods are attached to.
    pub bridge: String,
    /// The node's pod CIDR, e.g. `10.88.0.0/16`.
    pub subnet: String,
    /// MTU of the bridge and veths; `None` lets the plugin decide.
    pub mtu: Option<u32>,
    /// `cniVersion` of the generated configuration (`1.0.0` or `0.4.0`).
    pub cni_version: String,
    /// Limit on one plugin invocation.
    pub timeout: Duration,
}

impl Default for CniConfig {
    fn default() -> Self {
        CniConfig {
            plugin_dir: PathBuf::from("/usr/lib/cni"),
            state_dir: PathBuf::from("/var/lib/rkube/cni"),
            network_name: "rkube".to_owned(),
            bridge: "rkube0".to_owned(),
            subnet: "10.88.0.0/16".to_owned(),
            mtu: None,
            cni_version: "1.0.0".to_owned(),
            timeout: Duration::from_secs(60),
        }
    }
}

/// An interface a plugin reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CniInterface {
    pub name: String,
    #[serde(default)]
    pub mac: String,
    /// The netns path for interfaces inside the sandbox; empty on the host.
    #[serde(default)]
    pub sandbox: String,
}

/// What an ADD produced.
#[derive(Debug, Clone, PartialEq)]
pub struct CniResult {
    /// The pod's addresses, in the order the plugins reported them.
    pub ips: Vec<IpAddr>,
    /// The same with prefix length, e.g. `10.88.0.5/16`.
    pub cidrs: Vec<String>,
    /// The first address's gateway.
    pub gateway: Option<IpAddr>,
    pub interfaces: Vec<CniInterface>,
    /// The final plugin's result as JSON (what DEL and CHECK receive).
    pub raw: Value,
}

/// What the cache keeps per attachment: enough to redo DEL and CHECK
/// exactly as libcni-based runtimes do, with the config used at ADD time
/// (the node's config may have changed since).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CachedAttachment {
    container_id: String,
    ifname: String,
    netns: String,
    config: Value,
    port_mappings: Value,
    result: Value,
}

/// The client. Cheap to share (`Arc`); calls for different containers
/// may run concurrently (host-local and iptables lock on their own), calls
/// for one container must not.
#[derive(Debug, Clone)]
pub struct Cni {
    config: CniConfig,
    conflist: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Add,
    Del,
    Check,
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
        })
    }
}

impl Cni {
    /// Validates `config`, checks the plugins are installed, makes the
    /// state directory and turns on IP forwarding.
    ///
    /// Errors: a malformed setting → `InvalidSpec`; the plugin directory
    /// or a plugin missing → `Unavailable` (the node's network plugin is
    /// not ready; installing it fixes that without touching the config).
    pub fn new(config: CniConfig) -> Result<Self> {
        validate_name("network name", &config.network_name)?;
        validate_bridge(&config.bridge)?;
        let subnet_is_v6 = validate_subnet(&config.subnet)?;
        if !matches!(config.cni_version.as_str(), "1.0.0" | "0.4.0") {
            return Err(RuntimeError::invalid(format!(
                "unsupported cniVersion {:?} (want 1.0.0 or 0.4.0)",
                config.cni_version
            )));
        }
        if config.mtu.is_some_and(|m| !(576..=65535).contains(&m)) {
            return Err(RuntimeError::invalid(format!(
                "invalid MTU {:?}",
                config.mtu
            )));
        }
        if !config.plugin_dir.is_dir() {
            return Err(RuntimeError::new(
                ErrorKind::Unavailable,
                format!(
                    "CNI plugin directory {} does not exist",
                    config.plugin_dir.display()
                ),
            ));
        }
        for plugin in REQUIRED_PLUGINS {
            plugin_path(&config.plugin_dir, plugin)?;
        }
        std::fs::create_dir_all(config.state_dir.join("results")).map_err(|e| {
            RuntimeError::io(
                format!("create CNI state dir {}", config.state_dir.display()),
                e,
            )
        })?;
        enable_forwarding(subnet_is_v6)?;
        let conflist = build_conflist(&config);
        Ok(Cni { config, conflist })
    }

    pub fn config(&self) -> &CniConfig {
        &self.config
    }

    /// The network configuration list (the `.conflist` JSON) in use.
    pub fn network_config_list(&self) -> &Value {
        &self.conflist
    }

    /// Where host-local records its allocations (one file per address).
    pub fn ipam_dir(&self) -> PathBuf {
        self.config.state_dir.join("ipam")
    }

    /// Attaches the sandbox whose network namespace is pinned at
    /// `netns_path`: brings up `lo`, then runs the list's plugins in
    /// order, each getting the previous one's result. On failure the
    /// partial attachment is torn down again (DEL) before returning.
    pub async fn add(
        &self,
        container_id: &str,
        netns_path: &Path,
        ifname: &str,
        port_mappings: &[PortMapping],
    ) -> Result<CniResult> {
        validate_container_id(container_id)?;
        validate_ifname(ifname)?;
        if !is_namespace_file(netns_path) {
            return Err(RuntimeError::not_found(format!(
                "network namespace {}",
                netns_path.display()
            )));
        }
        let netns = netns_path.to_str().ok_or_else(|| {
            RuntimeError::invalid(format!("netns path {} is not UTF-8", netns_path.display()))
        })?;
        let mappings = runtime_port_mappings(port_mappings)?;

        // New namespaces have `lo` down; the loopback plugin brings it up.
        let lo = json!({
            "cniVersion": self.config.cni_version,
            "name": format!("{}-loopback", self.config.network_name),
            "type": "loopback",
        });
        // portmap only runs for pods that map host ports: for the others it
        // would add nothing but a process and a round of iptables calls.
        let conflist = effective_conflist(&self.conflist, &mappings);
        // `lo` and the chain touch different interfaces; run them at once.
        let (lo_result, chain_result) = tokio::join!(
            self.exec(&lo, Command::Add, container_id, netns, "lo"),
            self.add_chain(&conflist, container_id, netns, ifname, &mappings)
        );
        let prev = chain_result?;
        if let Err(err) = lo_result {
            return Err(self
                .undo_add(&conflist, container_id, netns, ifname, prev, err)
                .await);
        }
        let result = prev.unwrap_or(Value::Null);
        let parsed = match parse_result(&result) {
            Ok(r) => r,
            Err(err) => {
                return Err(self
                    .undo_add(&conflist, container_id, netns, ifname, Some(result), err)
                    .await)
            }
        };
        let cached = CachedAttachment {
            container_id: container_id.to_owned(),
            ifname: ifname.to_owned(),
            netns: netns.to_owned(),
            config: conflist.clone(),
            port_mappings: mappings,
            result,
        };
        if let Err(err) = self.write_cache(&cached) {
            return Err(self
                .undo_add(
                    &conflist,
                    container_id,
                    netns,
                    ifname,
                    Some(cached.result),
                    err,
                )
                .await);
        }
        Ok(parsed)
    }

    /// Tears down what an ADD set up, plugins in reverse order, each given
    /// the cached ADD result. Idempotent: a container never added (or
    /// already deleted) is fine. `netns_path` may be gone already; then the
    /// plugins release what lives outside it (the address, iptables rules)
    /// and the interfaces die with the namespace.
    pub async fn del(
        &self,
        container_id: &str,
        netns_path: Option<&Path>,
        ifname: &str,
    ) -> Result<()> {
        validate_container_id(container_id)?;
        validate_ifname(ifname)?;
        let cached = self.read_cache(container_id, ifname)?;
        let netns = usable_netns(netns_path);
        let (config, mappings, result) = match &cached {
            Some(c) => (&c.config, c.port_mappings.clone(), Some(&c.result)),
            None => (&self.conflist, json!([]), None),
        };
        self.del_list(config, container_id, &netns, ifname, result, &mappings)
            .await?;
        if let (true, Some(result)) = (netns.is_empty(), result) {
            teardown_masquerade(config, container_id, result).await;
        }
        self.remove_cache(container_id, ifname)
    }

    /// Asks every plugin whether the attachment is still as ADD left it
    /// (CNI CHECK). No cached ADD result → `NotFound`.
    pub async fn check(&self, container_id: &str, netns_path: &Path, ifname: &str) -> Result<()> {
        validate_container_id(container_id)?;
        validate_ifname(ifname)?;
        let cached = self.read_cache(container_id, ifname)?.ok_or_else(|| {
            RuntimeError::not_found(format!("CNI attachment of {container_id}/{ifname}"))
        })?;
        if !is_namespace_file(netns_path) {
            return Err(RuntimeError::not_found(format!(
                "network namespace {}",
                netns_path.display()
            )));
        }
        let netns = netns_path.to_string_lossy();
        let version = cached.config["cniVersion"].clone();
        let name = cached.config["name"].clone();
        for plugin in plugins(&cached.config) {
            let stdin = plugin_stdin(
                plugin,
                &name,
                &version,
                Some(&cached.result),
                &cached.port_mappings,
            );
            match self
                .exec(&stdin, Command::Check, container_id, &netns, ifname)
                .await
            {
                Ok(_) => {}
                Err(e) if is_portmap_v6_check_bug(plugin, &e, &cached.result) => {
                    tracing::debug!("ignoring portmap's IPv6 CHECK on an IPv4-only pod: {e}");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The cached ADD result of an attachment, if there is one.
    pub fn cached_result(&self, container_id: &str, ifname: &str) -> Result<Option<CniResult>> {
        validate_container_id(container_id)?;
        validate_ifname(ifname)?;
        self.read_cache(container_id, ifname)?
            .map(|c| parse_result(&c.result))
            .transpose()
    }

    /// Container ids with a cached attachment, e.g. to garbage-collect
    /// attachments of sandboxes that vanished while this process was down.
    pub fn cached_container_ids(&self) -> Result<Vec<String>> {
        let dir = self.config.state_dir.join("results");
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| RuntimeError::io(format!("read {}", dir.display()), e))?;
        let mut ids = Vec::new();
        for entry in entries.flatten() {
            let Ok(text) = std::fs::read(entry.path()) else {
                continue;
            };
            if let Ok(c) = serde_json::from_slice::<CachedAttachment>(&text) {
                ids.push(c.container_id);
            }
        }
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// Cleans up after a failed ADD and returns the error that caused it.
    /// Runs the list's plugins in order, each getting the previous one's
    /// result; on failure, undoes what ran.
    async fn add_chain(
        &self,
        conflist: &Value,
        container_id: &str,
        netns: &str,
        ifname: &str,
        mappings: &Value,
    ) -> Result<Option<Value>> {
        let version = conflist["cniVersion"].clone();
        let name = conflist["name"].clone();
        let mut prev: Option<Value> = None;
        for plugin in plugins(conflist) {
            let stdin = plugin_stdin(plugin, &name, &version, prev.as_ref(), mappings);
            match self
                .exec(&stdin, Command::Add, container_id, netns, ifname)
                .await
            {
                Ok(Some(result)) => prev = Some(result),
                Ok(None) => {
                    let err = RuntimeError::internal(format!(
                        "CNI plugin {} ADD returned no result",
                        plugin_type(plugin)
                    ));
                    return Err(self
                        .undo_add(conflist, container_id, netns, ifname, prev, err)
                        .await);
                }
                Err(err) => {
                    return Err(self
                        .undo_add(conflist, container_id, netns, ifname, prev, err)
                        .await)
                }
            }
        }
        Ok(prev)
    }

    async fn undo_add(
        &self,
        conflist: &Value,
        container_id: &str,
        netns: &str,
        ifname: &str,
        prev: Option<Value>,
        err: RuntimeError,
    ) -> RuntimeError {
        if let Err(del_err) = self
            .del_list(
                conflist,
                container_id,
                netns,
                ifname,
                prev.as_ref(),
                &json!([]),
            )
            .await
        {
            tracing::warn!("cleaning up failed CNI ADD of {container_id}: {del_err}");
        }
        err
    }

    async fn del_list(
        &self,
        config: &Value,
        container_id: &str,
        netns: &str,
        ifname: &str,
        result: Option<&Value>,
        mappings: &Value,
    ) -> Result<()> {
        let version = config["cniVersion"].clone();
        let name = config["name"].clone();
        // Unlike libcni, go on past a failing plugin so the others still
        // release what they hold; the first error is reported, and the
        // cache stays so a retry has the same input.
        let mut first_err = None;
        for plugin in plugins(config).iter().rev() {
            let stdin = plugin_stdin(plugin, &name, &version, result, mappings);
            if let Err(e) = self
                .exec(&stdin, Command::Del, container_id, netns, ifname)
                .await
            {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Runs one plugin. `Ok(Some(result))` for a command that prints one.
    async fn exec(
        &self,
        stdin: &Value,
        command: Command,
        container_id: &str,
        netns: &str,
        ifname: &str,
    ) -> Result<Option<Value>> {
        let kind = plugin_type(stdin);
        let path = plugin_path(&self.config.plugin_dir, kind)?;
        let input = serde_json::to_vec(stdin)
            .map_err(|e| RuntimeError::internal(format!("encode CNI config: {e}")))?;
        let mut child = tokio::process::Command::new(&path)
            .env_clear()
            .env(
                "PATH",
                std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into()),
            )
            .env("CNI_COMMAND", command.to_string())
            .env("CNI_CONTAINERID", container_id)
            .env("CNI_NETNS", netns)
            .env("CNI_IFNAME", ifname)
            .env("CNI_PATH", &self.config.plugin_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A timed-out plugin is killed when its future is dropped.
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| RuntimeError::io(format!("run CNI plugin {}", path.display()), e))?;
        let what = format!("CNI plugin {kind} {command} for {container_id}");
        let run = async {
            if let Some(mut pipe) = child.stdin.take() {
                // A plugin may exit without reading (e.g. on bad env);
                // its exit status tells more than a broken pipe.
                let _ = pipe.write_all(&input).await;
            }
            child.wait_with_output().await
        };
        let output = tokio::time::timeout(self.config.timeout, run)
            .await
            .map_err(|_| {
                RuntimeError::new(
                    ErrorKind::Timeout,
                    format!("{what} did not finish within {:?}", self.config.timeout),
                )
            })?
            .map_err(|e| RuntimeError::io(&what, e))?;
        if !output.status.success() {
            return Err(plugin_error(
                &what,
                &output.stdout,
                &output.stderr,
                output.status,
            ));
        }
        if output.stdout.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        let value = serde_json::from_slice(&output.stdout)
            .map_err(|e| RuntimeError::internal(format!("{what}: unreadable result: {e}")))?;
        Ok(Some(value))
    }

    fn cache_path(&self, container_id: &str, ifname: &str) -> PathBuf {
        self.config.state_dir.join("results").join(format!(
            "{}-{container_id}-{ifname}.json",
            self.config.network_name
        ))
    }

    fn read_cache(&self, container_id: &str, ifname: &str) -> Result<Option<CachedAttachment>> {
        let path = self.cache_path(container_id, ifname);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                RuntimeError::internal(format!("corrupt CNI cache {}: {e}", path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(RuntimeError::io(format!("read {}", path.display()), e)),
        }
    }

    fn write_cache(&self, cached: &CachedAttachment) -> Result<()> {
        let path = self.cache_path(&cached.container_id, &cached.ifname);
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(cached)
            .map_err(|e| RuntimeError::internal(format!("encode CNI cache: {e}")))?;
        // Write then rename, so a crash leaves the old file or the new.
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| RuntimeError::io(format!("write {}", path.display()), e))
    }

    fn remove_cache(&self, container_id: &str, ifname: &str) -> Result<()> {
        let path = self.cache_path(container_id, ifname);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(RuntimeError::io(format!("remove {}", path.display()), e)),
        }
    }
}

fn build_conflist(config: &CniConfig) -> Value {
    let mut bridge = json!({
        "type": "bridge",
        "bridge": config.bridge,
        "isGateway": true,
        "ipMasq": true,
        "hairpinMode": true,
        "ipam": {
            "type": "host-local",
            "ranges": [[{ "subnet": config.subnet }]],
            "routes": [{ "dst": if config.subnet.contains(':') { "::/0" } else { "0.0.0.0/0" } }],
            "dataDir": config.state_dir.join("ipam"),
        },
    });
    if let Some(mtu) = config.mtu {
        bridge["mtu"] = json!(mtu);
    }
    json!({
        "cniVersion": config.cni_version,
        "name": config.network_name,
        "plugins": [
            bridge,
            { "type": "portmap", "capabilities": { "portMappings": true }, "snat": true },
        ],
    })
}

/// The list without portmap when there is nothing to map.
fn effective_conflist(conflist: &Value, mappings: &Value) -> Value {
    let mut list = conflist.clone();
    if mappings.as_array().is_none_or(|m| m.is_empty()) {
        if let Some(plugins) = list["plugins"].as_array_mut() {
            plugins.retain(|p| plugin_type(p) != "portmap");
        }
    }
    list
}

fn plugins(conflist: &Value) -> &[Value] {
    conflist["plugins"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn plugin_type(conf: &Value) -> &str {
    conf["type"].as_str().unwrap_or("")
}

/// One plugin's stdin: its own config plus the list's name and version,
/// the previous result, and the runtime values for the capabilities it
/// declares (only `portMappings` here).
fn plugin_stdin(
    plugin: &Value,
    name: &Value,
    version: &Value,
    prev: Option<&Value>,
    mappings: &Value,
) -> Value {
    let mut conf = plugin.clone();
    conf["name"] = name.clone();
    conf["cniVersion"] = version.clone();
    if let Some(prev) = prev {
        conf["prevResult"] = prev.clone();
    }
    if plugin["capabilities"]["portMappings"].as_bool() == Some(true) {
        conf["runtimeConfig"] = json!({ "portMappings": mappings });
    }
    conf
}

/// `PortMapping`s as portmap's `runtimeConfig.portMappings`. Mappings
/// without a host port are not host ports and are left out.
fn runtime_port_mappings(mappings: &[PortMapping]) -> Result<Value> {
    let mut out = Vec::new();
    for m in mappings.iter().filter(|m| m.host_port != 0) {
        if m.container_port == 0 {
            return Err(RuntimeError::invalid(format!(
                "host port {} maps to container port 0",
                m.host_port
            )));
        }
        let protocol = match m.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        };
        let mut entry = json!({
            "hostPort": m.host_port,
            "containerPort": m.container_port,
            "protocol": protocol,
        });
        if !m.host_ip.is_empty() {
            m.host_ip.parse::<IpAddr>().map_err(|_| {
                RuntimeError::invalid(format!("invalid hostIP {:?} in port mapping", m.host_ip))
            })?;
            entry["hostIP"] = json!(m.host_ip);
        }
        out.push(entry);
    }
    Ok(Value::Array(out))
}

fn parse_result(result: &Value) -> Result<CniResult> {
    let bad = |what: &str| RuntimeError::internal(format!("CNI result: {what}: {result}"));
    let interfaces: Vec<CniInterface> = match result.get("interfaces") {
        Some(v) => serde_json::from_value(v.clone()).map_err(|_| bad("bad interfaces"))?,
        None => Vec::new(),
    };
    let mut ips = Vec::new();
    let mut cidrs = Vec::new();
    let mut gateway = None;
    for entry in result["ips"].as_array().ok_or_else(|| bad("no ips"))? {
        let cidr = entry["address"]
            .as_str()
            .ok_or_else(|| bad("ip without address"))?;
        let addr = cidr.split('/').next().unwrap_or_default();
        ips.push(addr.parse::<IpAddr>().map_err(|_| bad("bad address"))?);
        cidrs.push(cidr.to_owned());
        if gateway.is_none() {
            gateway = entry["gateway"].as_str().and_then(|g| g.parse().ok());
        }
    }
    if ips.is_empty() {
        return Err(bad("no ips"));
    }
    Ok(CniResult {
        ips,
        cidrs,
        gateway,
        interfaces,
        raw: result.clone(),
    })
}

/// A plugin's failure as a typed error, from its `{code, msg, details}`.
fn plugin_error(
    what: &str,
    stdout: &[u8],
    stderr: &[u8],
    status: std::process::ExitStatus,
) -> RuntimeError {
    #[derive(Deserialize)]
    struct PluginError {
        code: u32,
        #[serde(default)]
        msg: String,
        #[serde(default)]
        details: String,
    }
    match serde_json::from_slice::<PluginError>(stdout) {
        Ok(e) => {
            // Codes from the spec; 100+ are plugin-specific.
            let kind = match e.code {
                2 | 4 | 6 | 7 => ErrorKind::InvalidSpec,
                3 => ErrorKind::NotFound,
                11 => ErrorKind::Unavailable,
                _ => ErrorKind::Internal,
            };
            let mut message = format!("{what} failed: {}", e.msg);
            if !e.details.is_empty() {
                message.push_str(&format!(" ({})", e.details));
            }
            RuntimeError::new(kind, message)
        }
        Err(_) => {
            let out = String::from_utf8_lossy(stdout);
            let err = String::from_utf8_lossy(stderr);
            RuntimeError::internal(format!(
                "{what} failed ({status}): {} {}",
                out.trim(),
                err.trim()
            ))
        }
    }
}

/// The bridge plugin finds the addresses whose `ipMasq` rules it must
/// remove on the pod's interface, so a DEL without the namespace leaves
/// them behind. With the cached result we know the addresses: remove the
/// rule `-s <ip> -m comment --comment 'name: "<net>" id: "<id>"' -j
/// <chain>` from nat POSTROUTING and the chain it jumps to, as the plugin
/// would have. Best effort: failures are logged.
async fn teardown_masquerade(config: &Value, container_id: &str, result: &Value) {
    let masq = plugins(config)
        .iter()
        .any(|p| plugin_type(p) == "bridge" && p["ipMasq"] == true);
    let Ok(parsed) = parse_result(result) else {
        return;
    };
    if !masq {
        return;
    }
    let name = config["name"].as_str().unwrap_or_default();
    let comment = format!("name: \"{name}\" id: \"{container_id}\"");
    // How iptables -S prints that comment.
    let shown = format!("--comment \"{}\"", comment.replace('"', "\\\""));
    for ip in parsed.ips {
        let (bin, source) = match ip {
            IpAddr::V4(_) => ("iptables", format!("{ip}/32")),
            IpAddr::V6(_) => ("ip6tables", format!("{ip}/128")),
        };
        let iptables = |args: Vec<String>| async move {
            let out = tokio::process::Command::new(bin)
                .arg("-w")
                .args(&args)
                .kill_on_drop(true)
                .output()
                .await;
            match out {
                Ok(o) if o.status.success() => {
                    Some(String::from_utf8_lossy(&o.stdout).into_owned())
                }
                Ok(o) => {
                    let err = String::from_utf8_lossy(&o.stderr);
                    tracing::warn!("{bin} {}: {}", args.join(" "), err.trim());
                    None
                }
                Err(e) => {
                    tracing::warn!("run {bin}: {e}");
                    None
                }
            }
        };
        let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let Some(rules) = iptables(args(&["-t", "nat", "-S", "POSTROUTING"])).await else {
            continue;
        };
        let prefix = format!("-A POSTROUTING -s {source} ");
        for rule in rules
            .lines()
            .filter(|l| l.starts_with(&prefix) && l.contains(&shown))
        {
            let Some(chain) = rule.rsplit_once(" -j ").map(|(_, c)| c.trim().to_owned()) else {
                continue;
            };
            let del = args(&[
                "-t",
                "nat",
                "-D",
                "POSTROUTING",
                "-s",
                &source,
                "-m",
                "comment",
            ]);
            let del = [del, args(&["--comment", &comment, "-j", &chain])].concat();
            if iptables(del).await.is_some() && chain.starts_with("CNI-") {
                iptables(args(&["-t", "nat", "-F", &chain])).await;
                iptables(args(&["-t", "nat", "-X", &chain])).await;
            }
        }
    }
}

/// portmap before 1.2.0 (Debian 12 ships 1.1.1) checks for IPv6 DNAT
/// rules on CHECK even when the pod has no IPv6 address, so CHECK of any
/// IPv4-only pod with host ports fails (containernetworking/plugins#819).
/// The IPv4 rules are checked first, so this error means they passed.
fn is_portmap_v6_check_bug(plugin: &Value, err: &RuntimeError, result: &Value) -> bool {
    let has_v6 = parse_result(result).is_ok_and(|r| r.ips.iter().any(IpAddr::is_ipv6));
    plugin_type(plugin) == "portmap" && !has_v6 && err.message.contains("could not check ipv6")
}

/// What to pass as CNI_NETNS on DEL: the path if it still is a namespace,
/// else empty, which the spec lets plugins take as "already gone".
fn usable_netns(netns_path: Option<&Path>) -> String {
    match netns_path {
        Some(p) if is_namespace_file(p) => p.to_string_lossy().into_owned(),
        _ => String::new(),
    }
}

fn plugin_path(dir: &Path, plugin: &str) -> Result<PathBuf> {
    if plugin.is_empty() || plugin.contains('/') || plugin.starts_with('.') {
        return Err(RuntimeError::invalid(format!(
            "invalid CNI plugin type {plugin:?}"
        )));
    }
    let path = dir.join(plugin);
    if path.is_file() {
        Ok(path)
    } else {
        Err(RuntimeError::new(
            ErrorKind::Unavailable,
            format!("CNI plugin {plugin:?} not found in {}", dir.display()),
        ))
    }
}

fn enable_forwarding(v6: bool) -> Result<()> {
    let file = if v6 {
        "/proc/sys/net/ipv6/conf/all/forwarding"
    } else {
        "/proc/sys/net/ipv4/ip_forward"
    };
    let current =
        std::fs::read_to_string(file).map_err(|e| RuntimeError::io(format!("read {file}"), e))?;
    if current.trim() != "1" {
        tracing::info!("enabling {file} for pod traffic");
        std::fs::write(file, b"1").map_err(|e| RuntimeError::io(format!("write {file}"), e))?;
    }
    Ok(())
}

fn validate_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(RuntimeError::invalid(format!("invalid {what} {name:?}")))
    }
}

/// Container ids name cache files, so they must be plain.
fn validate_container_id(id: &str) -> Result<()> {
    validate_name("container id", id)
}

fn validate_bridge(name: &str) -> Result<()> {
    validate_ifname(name)
        .map_err(|_| RuntimeError::invalid(format!("invalid bridge name {name:?}")))
}

/// Linux interface names: 1–15 bytes, no '/', ':' or whitespace.
fn validate_ifname(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() < 16
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'/' && b != b':');
    if ok {
        Ok(())
    } else {
        Err(RuntimeError::invalid(format!(
            "invalid interface name {name:?}"
        )))
    }
}

/// Checks `addr/len` with no host bits set (host-local insists); returns
/// whether it is IPv6.
fn validate_subnet(subnet: &str) -> Result<bool> {
    let bad = |why: &str| RuntimeError::invalid(format!("invalid pod subnet {subnet:?}: {why}"));
    let (addr, len) = subnet
        .split_once('/')
        .ok_or_else(|| bad("want address/prefix"))?;
    let addr: IpAddr = addr.parse().map_err(|_| bad("bad address"))?;
    let len: u32 = len.parse().map_err(|_| bad("bad prefix length"))?;
    let (bits, max_len, value) = match addr {
        IpAddr::V4(a) => (32, 30, u128::from(u32::from(a))),
        IpAddr::V6(a) => (128, 126, u128::from(a)),
    };
    if len == 0 || len > max_len {
        return Err(bad("prefix length out of range"));
    }
    let host_mask = if len >= bits {
        0
    } else {
        (1u128 << (bits - len)) - 1
    };
    if value & host_mask != 0 {
        return Err(bad("host bits set"));
    }
    Ok(addr.is_ipv6())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netns::{run_in_namespace, NamespaceKind, NamespaceSet};
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{Instant, SystemTime, UNIX_EPOCH};

    static COUNTER: AtomicU32 = AtomicU32::new(0);

    /// A per-test number, distinct across tests and (very likely) across
    /// concurrently running test processes.
    fn unique() -> u32 {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        (std::process::id().wrapping_mul(2654435761) ^ nanos).wrapping_add(n.wrapping_mul(7919))
    }

    /// A test network: its own bridge, subnet, network name and state dir.
    /// Dropping it (also on a failed assertion) deletes what it attached,
    /// the namespaces and the bridge.
    struct TestNet {
        cni: Arc<Cni>,
        dir: tempfile::TempDir,
        attached: Mutex<Vec<(String, NamespaceSet)>>,
    }

    impl TestNet {
        fn new() -> TestNet {
            let u = unique();
            let dir = tempfile::tempdir().unwrap();
            let bridge = format!("rkt{:06x}", u & 0xff_ffff);
            let subnet = format!("10.{}.{}.0/24", 200 + (u >> 24) % 50, (u >> 8) & 0xff);
            let config = CniConfig {
                state_dir: dir.path().join("cni"),
                network_name: bridge.clone(),
                bridge,
                subnet,
                timeout: Duration::from_secs(30),
                ..CniConfig::default()
            };
            TestNet {
                cni: Arc::new(Cni::new(config).unwrap()),
                dir,
                attached: Mutex::default(),
            }
        }

        fn netns(&self, name: &str) -> NamespaceSet {
            NamespaceSet::create(&self.dir.path().join(name), &[NamespaceKind::Net], None).unwrap()
        }

        /// A sandbox: a netns attached with `ports`.
        async fn sandbox(&self, id: &str, ports: &[PortMapping]) -> (NamespaceSet, CniResult) {
            let ns = self.netns(id);
            self.attached
                .lock()
                .unwrap()
                .push((id.to_owned(), ns.clone()));
            let result = self
                .cni
                .add(id, ns.net_path().unwrap(), "eth0", ports)
                .await
                .unwrap();
            (ns, result)
        }

        fn bridge(&self) -> &str {
            &self.cni.config().bridge
        }

        /// Addresses host-local currently has handed out.
        fn allocated(&self) -> Vec<String> {
            let dir = self.cni.ipam_dir().join(&self.cni.config().network_name);
            match std::fs::read_dir(dir) {
                Ok(entries) => entries
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .filter(|n| n.parse::<IpAddr>().is_ok())
                    .collect(),
                Err(_) => Vec::new(),
            }
        }

        /// Waits (up to 10 s) until no veth is left on the test bridge: the
        /// kernel tears a removed namespace's interfaces down in the
        /// background, so its veth may outlive `remove` briefly.
        fn bridge_ports_drained(&self) -> String {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            loop {
                let ports = self.bridge_ports();
                if ports.is_empty() || std::time::Instant::now() > deadline {
                    return ports;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }

        /// Interfaces enslaved to the test bridge (the host ends of veths).
        fn bridge_ports(&self) -> String {
            let out = std::process::Command::new("ip")
                .args(["-o", "link", "show", "master", self.bridge()])
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).into_owned()
        }

        /// nat rules mentioning this network (bridge's ipMasq, portmap).
        fn nat_rules(&self) -> Vec<String> {
            let out = std::process::Command::new("iptables-save")
                .args(["-t", "nat"])
                .output();
            let name = &self.cni.config().network_name;
            String::from_utf8_lossy(&out.unwrap().stdout)
                .lines()
                .filter(|l| l.contains(name.as_str()))
                .map(str::to_owned)
                .collect()
        }
    }

    impl Drop for TestNet {
        fn drop(&mut self) {
            let attached = std::mem::take(&mut *self.attached.lock().unwrap());
            let cni = self.cni.clone();
            // DEL is async and we may be inside a runtime: run it on a
            // thread with its own.
            let dels = attached.clone();
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    for (id, ns) in &dels {
                        let _ = cni.del(id, ns.net_path(), "eth0").await;
                    }
                });
            })
            .join();
            for (_, ns) in &attached {
                let _ = ns.remove();
            }
            let _ = std::process::Command::new("ip")
                .args(["link", "del", &self.cni.config().bridge])
                .stderr(Stdio::null())
                .status();
        }
    }

    fn in_netns<T: Send + 'static>(ns: &NamespaceSet, f: impl FnOnce() -> T + Send + 'static) -> T {
        run_in_namespace(ns.net_path().unwrap(), NamespaceKind::Net, f).unwrap()
    }

    fn ping_from(ns: Option<&NamespaceSet>, ip: IpAddr) -> bool {
        let mut cmd = std::process::Command::new("nsenter");
        if let Some(ns) = ns {
            cmd.arg(format!("--net={}", ns.net_path().unwrap().display()));
        }
        cmd.args(["/bin/busybox", "ping", "-c1", "-W2", &ip.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    }

    /// Accepts one connection and answers it with `reply`.
    fn serve_once(listener: TcpListener, reply: &'static [u8]) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            use std::io::Write;
            let (mut conn, _) = listener.accept().unwrap();
            conn.write_all(reply).unwrap();
        })
    }

    fn read_all(addr: SocketAddr) -> std::io::Result<Vec<u8>> {
        use std::io::Read;
        let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
        conn.set_read_timeout(Some(Duration::from_secs(3)))?;
        let mut buf = Vec::new();
        conn.read_to_end(&mut buf)?;
        Ok(buf)
    }

    #[tokio::test]
    async fn two_sandboxes_reach_each_other_the_host_and_host_ports() {
        let net = TestNet::new();
        let host_port = 20000 + (unique() % 20000) as u16;
        let ports = [PortMapping {
            protocol: Protocol::Tcp,
            container_port: 8080,
            host_port,
            host_ip: String::new(),
        }];
        let (a, ra) = net.sandbox("pod-a", &ports).await;
        let (b, rb) = net.sandbox("pod-b", &[]).await;
        let (ip_a, ip_b) = (ra.ips[0], rb.ips[0]);
        assert_ne!(ip_a, ip_b);
        let subnet_prefix = net
            .cni
            .config()
            .subnet
            .rsplit_once(".0/")
            .unwrap()
            .0
            .to_owned();
        for ip in [ip_a, ip_b] {
            assert!(
                ip.to_string().starts_with(&format!("{subnet_prefix}.")),
                "{ip} in subnet"
            );
        }
        assert_eq!(
            ra.gateway,
            Some(format!("{subnet_prefix}.1").parse().unwrap())
        );
        assert!(ra.interfaces.iter().any(|i| i.name == "eth0"));
        assert_eq!(net.allocated().len(), 2);

        // lo is up in the pods.
        assert!(ping_from(Some(&a), "127.0.0.1".parse().unwrap()));
        // Pod to pod, host to pod.
        assert!(ping_from(Some(&a), ip_b), "a pings b");
        assert!(ping_from(Some(&b), ip_a), "b pings a");
        assert!(ping_from(None, ip_a), "host pings a");

        // TCP: a listener in pod a, reached from pod b, the host, and
        // through the host port.
        let listener = in_netns(&a, || TcpListener::bind("0.0.0.0:8080").unwrap());
        let listener2 = listener.try_clone().unwrap();
        let listener3 = listener.try_clone().unwrap();
        let listener4 = listener.try_clone().unwrap();
        let server = serve_once(listener, b"from-a");
        let target = SocketAddr::new(ip_a, 8080);
        let got = in_netns(&b, move || read_all(target).unwrap());
        assert_eq!(got, b"from-a");
        server.join().unwrap();

        let server = serve_once(listener2, b"host");
        assert_eq!(read_all(target).unwrap(), b"host");
        server.join().unwrap();

        // The host port answers on the node's own addresses (the bridge's
        // gateway address is one of them).
        let server = serve_once(listener3, b"hostport");
        let via = SocketAddr::new(ra.gateway.unwrap(), host_port);
        assert_eq!(read_all(via).unwrap(), b"hostport");
        server.join().unwrap();
        // And on 127.0.0.1 (portmap turns on route_localnet for that).
        let server = serve_once(listener4, b"localhost");
        let via_lo = SocketAddr::from(([127, 0, 0, 1], host_port));
        assert_eq!(read_all(via_lo).unwrap(), b"localhost");
        server.join().unwrap();

        // CHECK passes while attached; the cache survives a new client.
        net.cni
            .check("pod-a", a.net_path().unwrap(), "eth0")
            .await
            .unwrap();
        let again = Cni::new(net.cni.config().clone()).unwrap();
        assert_eq!(
            again.cached_result("pod-a", "eth0").unwrap().unwrap().ips,
            ra.ips
        );
        assert_eq!(again.cached_container_ids().unwrap(), ["pod-a", "pod-b"]);

        // DEL from the new client releases the address and host port.
        again.del("pod-a", a.net_path(), "eth0").await.unwrap();
        again.del("pod-a", a.net_path(), "eth0").await.unwrap();
        assert_eq!(net.allocated(), [ip_b.to_string()]);
        assert!(again.cached_result("pod-a", "eth0").unwrap().is_none());
        let err = again
            .check("pod-a", a.net_path().unwrap(), "eth0")
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(read_all(via).is_err(), "host port gone");

        // DEL after the namespace is gone still releases the address.
        b.remove().unwrap();
        again.del("pod-b", b.net_path(), "eth0").await.unwrap();
        assert!(net.allocated().is_empty());
        assert_eq!(net.bridge_ports_drained(), "");
        assert_eq!(net.nat_rules(), Vec::<String>::new());
        a.remove().unwrap();
    }

    #[tokio::test]
    async fn many_add_del_cycles_leak_nothing() {
        let net = Arc::new(TestNet::new());
        let started = Instant::now();
        let mut tasks = Vec::new();
        // Four workers at once, as several pods start on a node.
        for worker in 0..4 {
            let net = net.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..75 {
                    let id = format!("cycle-{worker}-{i}");
                    let ns = net.netns(&id);
                    // Registered first, so a failure is cleaned up by Drop.
                    net.attached.lock().unwrap().push((id.clone(), ns.clone()));
                    net.cni
                        .add(&id, ns.net_path().unwrap(), "eth0", &[])
                        .await
                        .unwrap();
                    net.cni.del(&id, ns.net_path(), "eth0").await.unwrap();
                    ns.remove().unwrap();
                    net.attached
                        .lock()
                        .unwrap()
                        .retain(|(other, _)| *other != id);
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        eprintln!("300 ADD/DEL cycles took {:?}", started.elapsed());
        assert_eq!(net.allocated(), Vec::<String>::new());
        assert_eq!(net.bridge_ports_drained(), "");
        assert_eq!(net.nat_rules(), Vec::<String>::new());
        let root = net.dir.path().to_str().unwrap().to_owned();
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mountinfo.contains(&root), "no netns mounts left");
        assert!(net.cni.cached_container_ids().unwrap().is_empty());
    }

    #[tokio::test]
    async fn failed_add_cleans_up_and_reports_the_plugin_error() {
        let net = TestNet::new();
        let ns = net.netns("pod-x");
        // portmap fails to decode its config, after the bridge plugin has
        // attached the pod and taken an address: ADD must undo that.
        let mut bad = (*net.cni).clone();
        bad.conflist["plugins"][1]["snat"] = json!("yes");
        // portmap runs only for pods that map a host port.
        let mapping = PortMapping {
            protocol: Protocol::Tcp,
            container_port: 80,
            host_port: 18080,
            host_ip: String::new(),
        };
        let err = bad
            .add("pod-x", ns.net_path().unwrap(), "eth0", &[mapping])
            .await
            .unwrap_err();
        assert!(
            err.message
                .contains("CNI plugin portmap ADD for pod-x failed"),
            "{err}"
        );
        assert!(net.allocated().is_empty(), "address released");
        assert_eq!(net.bridge_ports_drained(), "");
        assert_eq!(net.nat_rules(), Vec::<String>::new());
        assert!(net.cni.cached_container_ids().unwrap().is_empty());
        ns.remove().unwrap();
    }

    #[tokio::test]
    async fn bad_input_is_a_typed_error() {
        let tmp = tempfile::tempdir().unwrap();
        let base = CniConfig {
            state_dir: tmp.path().to_path_buf(),
            ..CniConfig::default()
        };
        let err = |c: CniConfig| Cni::new(c).unwrap_err().kind();
        let missing = CniConfig {
            plugin_dir: tmp.path().join("nope"),
            ..base.clone()
        };
        assert_eq!(err(missing), ErrorKind::Unavailable);
        let empty_dir = CniConfig {
            plugin_dir: tmp.path().to_path_buf(),
            ..base.clone()
        };
        assert_eq!(err(empty_dir), ErrorKind::Unavailable);
        for subnet in [
            "10.88.0.1/16",
            "10.88.0.0",
            "10.88.0.0/31",
            "nonsense/8",
            "10.0.0.0/0",
        ] {
            let c = CniConfig {
                subnet: subnet.to_owned(),
                ..base.clone()
            };
            assert_eq!(err(c), ErrorKind::InvalidSpec, "{subnet}");
        }
        for bridge in ["", "a-very-long-bridge-name", "br/0", "br 0"] {
            let c = CniConfig {
                bridge: bridge.to_owned(),
                ..base.clone()
            };
            assert_eq!(err(c), ErrorKind::InvalidSpec, "{bridge:?}");
        }
        let c = CniConfig {
            network_name: "../x".to_owned(),
            ..base.clone()
        };
        assert_eq!(err(c), ErrorKind::InvalidSpec);
        let c = CniConfig {
            cni_version: "0.2.0".to_owned(),
            ..base.clone()
        };
        assert_eq!(err(c), ErrorKind::InvalidSpec);

        let cni = Cni::new(base).unwrap();
        let e = cni
            .add("../etc", tmp.path(), "eth0", &[])
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidSpec);
        let e = cni
            .add("c1", &tmp.path().join("no-netns"), "eth0", &[])
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        // DEL of something never added is fine.
        cni.del("never-added", None, "eth0").await.unwrap();
    }

    #[tokio::test]
    async fn plugin_error_json_becomes_the_message() {
        // A config the bridge plugin rejects (no bridge may be named so
        // long) reaches the plugin through a hand-made list.
        let net = TestNet::new();
        let ns = net.netns("pod-e");
        let mut bad = (*net.cni).clone();
        bad.conflist["plugins"][0]["ipam"]["ranges"] = json!([[{ "subnet": "not-a-cidr" }]]);
        let err = bad
            .add("pod-e", ns.net_path().unwrap(), "eth0", &[])
            .await
            .unwrap_err();
        assert!(err.message.contains("CNI plugin bridge ADD"), "{err}");
        assert!(err.message.contains("not-a-cidr"), "{err}");
        assert!(net.allocated().is_empty());
        ns.remove().unwrap();
    }

    #[test]
    fn conflist_and_port_mappings_have_the_spec_shape() {
        let c = CniConfig {
            state_dir: "/s".into(),
            ..CniConfig::default()
        };
        let list = build_conflist(&c);
        assert_eq!(list["plugins"][0]["type"], "bridge");
        assert_eq!(list["plugins"][0]["ipam"]["dataDir"], "/s/ipam");
        assert_eq!(list["plugins"][1]["capabilities"]["portMappings"], true);
        let m = runtime_port_mappings(&[
            PortMapping {
                protocol: Protocol::Udp,
                container_port: 53,
                host_port: 5353,
                host_ip: "127.0.0.1".into(),
            },
            PortMapping {
                protocol: Protocol::Tcp,
                container_port: 80,
                host_port: 0,
                host_ip: String::new(),
            },
        ])
        .unwrap();
        assert_eq!(
            m,
            json!([{"hostPort": 5353, "containerPort": 53, "protocol": "udp", "hostIP": "127.0.0.1"}])
        );
        let stdin = plugin_stdin(&list["plugins"][1], &json!("n"), &json!("1.0.0"), None, &m);
        assert_eq!(stdin["runtimeConfig"]["portMappings"], m);
        assert_eq!(stdin["name"], "n");
        let stdin = plugin_stdin(&list["plugins"][0], &json!("n"), &json!("1.0.0"), None, &m);
        assert!(stdin.get("runtimeConfig").is_none());
    }
}
