//! What this machine is, read from /proc and /etc: capacity, addresses,
//! OS and kernel, pressure signals. Plain reads; no API calls.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

/// Facts the Node object reports about the machine.
#[derive(Debug, Clone)]
pub struct MachineInfo {
    pub cpus: u32,
    pub memory_bytes: u64,
    pub ephemeral_storage_bytes: u64,
    pub kernel_version: String,
    pub os_image: String,
    pub machine_id: String,
    pub boot_id: String,
    pub hostname: String,
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// `key: value kB` lines of /proc/meminfo, in bytes.
pub fn meminfo() -> BTreeMap<String, u64> {
    parse_meminfo(&std::fs::read_to_string("/proc/meminfo").unwrap_or_default())
}

pub fn parse_meminfo(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            let mut parts = v.split_whitespace();
            let n: u64 = parts.next()?.parse().ok()?;
            let unit = parts.next().unwrap_or("");
            Some((k.to_string(), if unit == "kB" { n * 1024 } else { n }))
        })
        .collect()
}

/// `PRETTY_NAME` from an os-release file.
pub fn parse_os_release(text: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into())
}

/// (total, available) bytes of the filesystem holding `path`.
pub fn filesystem_bytes(path: &Path) -> (u64, u64) {
    match nix::sys::statvfs::statvfs(path) {
        Ok(s) => {
            let frag = s.fragment_size();
            (s.blocks() * frag, s.blocks_available() * frag)
        }
        Err(_) => (0, 0),
    }
}

impl MachineInfo {
    pub fn read(root_dir: &Path) -> MachineInfo {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1);
        let memory_bytes = meminfo().get("MemTotal").copied().unwrap_or(0);
        let uname = nix::sys::utsname::uname().ok();
        MachineInfo {
            cpus,
            memory_bytes,
            ephemeral_storage_bytes: filesystem_bytes(root_dir).0,
            kernel_version: uname
                .as_ref()
                .map(|u| u.release().to_string_lossy().into_owned())
                .unwrap_or_default(),
            os_image: parse_os_release(
                &std::fs::read_to_string("/etc/os-release").unwrap_or_default(),
            ),
            machine_id: read_trimmed("/etc/machine-id"),
            boot_id: read_trimmed("/proc/sys/kernel/random/boot_id"),
            hostname: nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_else(|| "localhost".into()),
        }
    }
}

/// The first non-loopback IPv4 address of this machine, else loopback.
pub fn node_ip() -> IpAddr {
    let fallback = IpAddr::from([127, 0, 0, 1]);
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return fallback;
    };
    addrs
        .filter_map(|a| a.address?.as_sockaddr_in().map(|s| IpAddr::V4(s.ip())))
        .find(|ip| !ip.is_loopback())
        .unwrap_or(fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_is_read_in_bytes() {
        let m = parse_meminfo(
            "MemTotal:       16384 kB\nMemAvailable:    2048 kB\nHugePages_Total: 0\n",
        );
        assert_eq!(m["MemTotal"], 16384 * 1024);
        assert_eq!(m["MemAvailable"], 2048 * 1024);
        assert_eq!(m["HugePages_Total"], 0);
    }

    #[test]
    fn os_image_is_the_pretty_name() {
        let text = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n";
        assert_eq!(parse_os_release(text), "Debian GNU/Linux 12 (bookworm)");
        assert_eq!(parse_os_release(""), "Linux");
    }

    #[test]
    fn this_machine_has_cpus_and_memory() {
        let m = MachineInfo::read(Path::new("/"));
        assert!(m.cpus >= 1 && m.memory_bytes > 0 && m.ephemeral_storage_bytes > 0);
    }
}
