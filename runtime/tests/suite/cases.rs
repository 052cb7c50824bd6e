//! The cases of the runtime suite; each takes a fresh harness.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use runtime::types::*;
use runtime::ErrorKind;

use super::{eventually, kind_of, leftover_pod_cgroups, mount_lines_under, Harness};

pub async fn exit_codes_and_reasons(h: &Harness) {
    let sb = h.sandbox("exits").await;
    let (code, _, status) = h
        .run_to_exit(&sb, h.container("fails", &["sh", "-c", "exit 3"]))
        .await;
    assert_eq!((code, status.reason.as_str()), (3, "Error"));
    assert!(status.started_at.is_some() && status.finished_at.is_some());
    assert!(status.finished_at >= status.started_at);
    let (code, _, status) = h.run_to_exit(&sb, h.container("works", &["true"])).await;
    assert_eq!((code, status.reason.as_str()), (0, "Completed"));
    h.rt.remove_pod_sandbox(&sb.0).await.unwrap();
}

pub async fn env_args_and_working_dir(h: &Harness) {
    let sb = h.sandbox("env").await;
    let mut c = h.container("env", &["sh", "-c"]);
    c.args = vec!["echo \"$GREETING $0\"; pwd".into(), "arg0".into()];
    c.envs = vec![("GREETING".into(), "hello".into())];
    c.working_dir = "/tmp".into();
    let (code, logs, _) = h.run_to_exit(&sb, c).await;
    assert_eq!(code, 0, "{logs}");
    assert_eq!(logs, "hello arg0\n/tmp\n");
    h.rt.remove_pod_sandbox(&sb.0).await.unwrap();
}

pub async fn mounts_read_write_and_read_only(h: &Harness) {
    let data = h.dir.path().join("data");
    let ro = h.dir.path().join("ro");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&ro).unwrap();
    std::fs::write(ro.join("file"), "from the host\n").unwrap();
    let sb = h.sandbox("mounts").await;
    let mut c = h.container(
        "mounts",
        &[
            "sh",
            "-c",
            "cat /ro/file; echo written > /data/out; touch /ro/new && echo WROTE-RO",
        ],
    );
    c.mounts = vec![
        Mount {
            container_path: "/data".into(),
            host_path: data.clone(),
            readonly: false,
        },
        Mount {
            container_path: "/ro".into(),
            host_path: ro.clone(),
            readonly: true,
        },
    ];
    let (code, logs, _) = h.run_to_exit(&sb, c).await;
    assert_ne!(code, 0, "touching a read-only mount must fail: {logs}");
    assert!(logs.contains("from the host"), "{logs}");
    assert!(!logs.contains("WROTE-RO"), "{logs}");
    assert_eq!(
        std::fs::read_to_string(data.join("out")).unwrap(),
        "written\n"
    );
    assert!(!ro.join("new").exists());
    h.rt.remove_pod_sandbox(&sb.0).await.unwrap();
}

pub async fn user_group_and_read_only_rootfs(h: &Harness) {
    let sb = h.sandbox("user").await;
    let mut c = h.container("user", &["sh", "-c", "id -u; id -g; id -G"]);
    c.security.run_as_user = Some(1000);
    c.security.run_as_group = Some(3000);
    c.security.supplemental_groups = vec![4000];
    let (code, logs, _) = h.run_to_exit(&sb, c).await;
    assert_eq!(code, 0, "{logs}");
    let lines: Vec<&str> = logs.lines().collect();
    assert_eq!(lines[..2], ["1000", "3000"], "{logs}");
    assert!(lines[2].split(' ').any(|g| g == "4000"), "{logs}");
    let mut c = h.container("rofs", &["sh", "-c", "touch /x"]);
    c.security.readonly_rootfs = true;
    let (code, _, _) = h.run_to_exit(&sb, c).await;
    assert_ne!(code, 0, "a read-only root filesystem takes no writes");
    h.rt.remove_pod_sandbox(&sb.0).await.unwrap();
}

pub async fn logs_are_cri_files_with_both_streams(h: &Harness) {
    let sb = h.sandbox("logs").await;
    let c = h.container("logs", &["sh", "-c", "echo out; echo err >&2; printf tail"]);
    let (_, logs, status) = h.run_to_exit(&sb, c).await;
    let raw = std::fs::read_to_string(&status.log_path).unwrap();
    assert!(
        status.log_path.ends_with("logs/0.log"),
        "{}",
        status.log_path.display()
    );
    let tagged: Vec<(&str, &str, &str)> = raw
        .lines()
        .map(|l| {
            let mut f = l.splitn(4, ' ');
            f.next().unwrap();
            (f.next().unwrap(), f.next().unwrap(), f.next().unwrap_or(""))
        })
        .collect();
    assert!(tagged.contains(&("stdout", "F", "out")), "{raw}");
    assert!(tagged.contains(&("stderr", "F", "err")), "{raw}");
    assert!(tagged.contains(&("stdout", "F", "tail")), "{raw}");
    assert!(logs.contains("out\n") && logs.contains("err\n"), "{logs}");
    h.rt.remove_pod_sandbox(&sb.0).await.unwrap();
}

pub async fn hostname_and_dns_come_from_the_sandbox(h: &Harness) {
    let sb = h.sandbox("named-pod").await;
    let c = h.container("dns", &["sh", "-c", "hostname; cat /etc/resolv.conf"]);
    let (code, logs, _) = h.run_to_exit(&sb, c).await;
    assert_eq!(code, 0, "{logs}");
    assert!(logs.starts_with("named-pod\n"), "{logs}");
    assert!(logs.contains("nameserver 10.96.0.10"), "{logs}");
    assert!(logs.contains("search default.svc.cluster.local"), "{logs}");
    h.rt.remove_pod_sandbox(&sb.0).await.unwrap();
}

pub async fn exec_without_tty(h: &Harness) {
    let sb = h.sandbox("exec").await;
    let mut c = h.container("sleeper", &["sleep", "1000"]);
    c.envs = vec![("FROM_SPEC".into(), "yes".into())];
    let id = h.start(&sb, c).await;
    let (code, out, err) = h
        .exec_output(
            &id,
            &["sh", "-c", "echo hi $FROM_SPEC; echo bad >&2; exit 7"],
        )
        .await;
    assert_eq!((code, out.as_str(), err.as_str()), (7, "hi yes\n", "bad\n"));
    // stdin through a pipe, closed when the caller drops it.
    let request = ExecRequest {
        cmd: vec!["cat".into()],
        stdin: true,
        stdout: true,
        ..Default::default()
    };
    let mut s = h.rt.exec(&id, request).await.unwrap();
    let mut stdin = s.stdin.take().unwrap();
    stdin.write_all(b"piped input").await.unwrap();
    drop(stdin);
    let mut out = String::new();
    s.stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .await
        .unwrap();
    assert_eq!(out, "piped input");
    assert_eq!(s.exit.await.unwrap(), 0);
    h.rt.remove_pod_sandbox(&sb.0).await.unwrap();
}

pub async fn exec_with_tty(h: &Harness) {
    let sb = h.sandbox("tty").await;
    let id = h
        .start(&sb, h.container("sleeper", &["sleep", "1000"]))
        .await;
    let request = ExecRequest {
        cmd: vec![
            "sh".into(),
            "-c".into(),
            "test -t 0 && echo is-a-tty; read x; echo got $x".into(),
        ],
        tty: true,
        stdin: true,
        stdout: true,
        stderr: false,
    };
    let mut s = h.rt.exec(&id, request).await.unwrap();
    assert!(s.stderr.is_none(), "a tty merges stderr into stdout");
    (s.resize.as_ref().unwrap())(TerminalSize {
        width: 100,
        height: 40,
    })
    .unwrap();
    let mut stdin = s.stdin.take().unwrap();
    stdin.write_all(b"abc\n").await.unwrap();
    let mut out = Vec::new();
    s.stdout
        .take()
        .unwrap()
        .read_to_end(&mut out)
        .await
        .unwrap();
    let out = String::from_utf8_lossy(&out);
    assert!(out.contains("is-a-tty"), "{out}");
    assert!(out.contains("got abc"), "{out}");
    assert_eq!(s.exit.await.unwrap(), 0);
    h.rt.remove_pod_sandbox(&sb.0).await.unwrap();
}

pub async fn attach_feeds_stdin_and_streams_output(h: &Harness) {
    let sb = h.sandbox("attach").await;
    let mut c = h.container("reader", &["sh", "-c", "echo ready; read x; echo got $x"]);
    c.stdin = true;
    let id = h.start(&sb, c).await;
    let log = h.rt.container_status(&id).await.unwrap().log_path;
    eventually(
        Duration::from_secs(10),
        "the container to print ready",
        || {
            let log = log.clone();
            async move {
                std::fs::read_to_string(&log)
                    .ok()
                    .filter(|s| s.contains("ready"))
            }
        },
    )
    .await;
    let mut s = h.rt.attach(&id, true).await.unwrap();
    s.stdin.take().unwrap().write_all(b"hello\n").await.unwrap();
    let mut out = String::new();
    s.stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .await
        .unwrap();
    assert_eq!(out, "got hello\n");
    assert_eq!(s.exit.await.unwrap(), 0);
    h.rt.remove_pod_sandbox(&sb.0).await.unwrap();
}

/// Starts busybox httpd on port 8080 serving "hello" at /i.html.
fn web_server(h: &Harness) -> ContainerConfig {
    h.container(
        "web",
        &[
            "sh",
            "-c",
            "mkdir -p /www && echo hello > /www/i.html && exec httpd -f -p 8080 -h /www",
        ],
    )
}

pub async fn port_forward_reaches_the_sandbox_loopback(h: &Harness) {
    let sb = h.sandbox("forward").await;
    h.start(&sb, web_server(h)).await;
    let body = eventually(
        Duration::from_secs(10),
        "httpd to answer through port-forward",
        || {
            let rt = h.rt.clone();
            let id = sb.0.clone();
            async move {
                let mut conn = rt.port_forward(&id, 8080).await.ok()?;
                conn.write_all(b"GET /i.html HTTP/1.0\r\n\r\n").await.ok()?;
                let mut out = String::new();
                conn.read_to_string(&mut out).await.ok()?;
                Some(out)
            }
        },
    )
    .await;
    assert!(body.ends_with("hello\n"), "{body}");
    let err = h.rt.port_forward(&sb.0, 8081).await;
    assert!(err.is_err(), "nothing listens on 8081");
    h.rt.remove_pod_sandbox(&sb.0).await.unwrap();
}

pub async fn stop_sends_sigterm_then_sigkill(h: &Harness) {
    let sb = h.sandbox("stop").await;
    let polite = h
        .start(
            &sb,
            h.container(
                "polite",
                &[
                    "sh",
                    "-c",
                    "trap 'echo term; exit 0' TERM; echo up; while :; do sleep 0.1; done",
                ],
            ),
        )
        .await;
    let stubborn = h
        .start(&sb, h.container("stubborn", &["sleep", "1000"]))
        .await;
    let log = h.rt.container_status(&polite).await.unwrap().log_path;
    eventually(Duration::from_secs(10), "the trap to be set", || {
        let log = log.clone();
        async move {
            std::fs::read_to_string(&log)
                .ok()
                .filter(|s| s.contains("up"))
        }
    })
    .await;
    h.rt.stop_container(&polite, Duration::from_secs(30))
        .await
        .unwrap();
    let s = h.rt.container_status(&polite).await.unwrap();
    assert_eq!((s.state, s.exit_code), (ContainerState::Exited, Some(0)));
    assert!(h.logs(&s).contains("term"));
    // PID 1 without a handler ignores SIGTERM: SIGKILL after the grace.
    let begin = Instant::now();
    h.rt.stop_container(&stubborn, Duration::from_millis(500))
        .await
        .unwrap();
    assert!(begin.elapsed() >= Duration::from_millis(500));
    let s = h.rt.container_status(&stubborn).await.unwrap();
    assert_eq!((s.state, s.exit_code), (ContainerState::Exited, Some(137)));
    h.rt.remove_pod_sandbox(&sb.0).await.unwrap();
}

pub async fn memory_limit_oom_kill_is_reported(h: &Harness) {
    let sb = h.sandbox("oom").await;
    let mut c = h.container("hog", &["sh", "-c", "tail /dev/zero"]);
    c.resources.memory_limit_bytes = 32 << 20;
    let (code, _, status) = h.run_to_exit(&sb, c).await;
    assert_eq!((code, status.reason.as_str()), (137, "OOMKilled"));
    h.rt.remove_pod_sandbox(&sb.0).await.unwrap();
}

pub async fn cpu_limit_is_applied(h: &Harness) {
    let sb = h.sandbox("cpu").await;
    let mut c = h.container("spin", &["sh", "-c", "while :; do :; done"]);
    c.resources.cpu_quota = 20_000;
    c.resources.cpu_period = 100_000;
    c.resources.cpu_shares = 256;
    let id = h.start(&sb, c).await;
    let pid = h.rt.container_status(&id).await.unwrap().pid.unwrap();
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let cpu_path = cgroup
        .lines()
        .find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
            ctrls
                .split(',')
                .any(|c| c == "cpu")
                .then(|| path.to_string())
        })
        .expect("the container has a cpu cgroup");
    let base = std::path::Path::new("/sys/fs/cgroup/cpu").join(cpu_path.trim_start_matches('/'));
    let quota = std::fs::read_to_string(base.join("cpu.cfs_quota_us")).unwrap();
    let shares = std::fs::read_to_string(base.join("cpu.shares")).unwrap();
    assert_eq!((quota.trim(), shares.trim()), ("20000", "256"));
    let used =
        eventually(
            Duration::from_secs(10),
            "CPU use to show in the stats",
            || {
                let rt = h.rt.clone();
                let id = id.clone();
                async move {
                    Some(rt.container_stats(&id).await.ok()?.cpu_usage_nanos).filter(|n| *n > 0)
                }
            },
        )
        .await;
    assert!(used > 0);
    let sandbox_stats = h.rt.pod_sandbox_stats(&sb.0).await.unwrap();
    assert!(sandbox_stats.cpu_usage_nanos >= used);
    assert!(sandbox_stats.memory_usage_bytes > 0);
    h.rt.remove_pod_sandbox(&sb.0).await.unwrap();
}

fn ip_in_subnet(ip: &str, subnet: &str) -> bool {
    let prefix = subnet.rsplit_once('.').unwrap().0;
    ip.starts_with(&format!("{prefix}."))
}

pub async fn pods_get_distinct_ips_and_reach_each_other(h: &Harness) {
    let a = h.sandbox("pod-a").await;
    let b = h.sandbox("pod-b").await;
    let ip_a = h.rt.pod_sandbox_status(&a.0).await.unwrap().ips[0].clone();
    let ip_b = h.rt.pod_sandbox_status(&b.0).await.unwrap().ips[0].clone();
    assert_ne!(ip_a, ip_b);
    assert!(
        ip_in_subnet(&ip_a, &h.subnet) && ip_in_subnet(&ip_b, &h.subnet),
        "{ip_a} {ip_b}"
    );
    h.start(&a, web_server(h)).await;
    let client = h.start(&b, h.container("client", &["sleep", "1000"])).await;
    let (code, out, err) = h
        .exec_output(&client, &["ping", "-c", "1", "-W", "5", &ip_a])
        .await;
    assert_eq!(code, 0, "ping {ip_a}: {out} {err}");
    let url = format!("http://{ip_a}:8080/i.html");
    let body = eventually(Duration::from_secs(10), "wget from pod b to pod a", || {
        let url = url.clone();
        let client = client.clone();
        async move {
            let (code, out, _) = h
                .exec_output(&client, &["wget", "-q", "-O", "-", &url])
                .await;
            (code == 0).then_some(out)
        }
    })
    .await;
    assert_eq!(body, "hello\n");
    // The node reaches pods too.
    let conn = tokio::net::TcpStream::connect((ip_a.as_str(), 8080)).await;
    assert!(conn.is_ok(), "the host reaches {ip_a}:8080");
    h.rt.remove_pod_sandbox(&a.0).await.unwrap();
    h.rt.remove_pod_sandbox(&b.0).await.unwrap();
}

pub async fn sandbox_removal_releases_everything(h: &Harness) {
    let sb = h.sandbox("gone").await;
    let status = h.rt.pod_sandbox_status(&sb.0).await.unwrap();
    let ip = status.ips[0].clone();
    let netns = status.netns_path.clone();
    assert!(netns.exists());
    let id = h
        .start(&sb, h.container("sleeper", &["sleep", "1000"]))
        .await;
    let pid = h.rt.container_status(&id).await.unwrap().pid.unwrap();
    let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let mem_path = cgroup
        .lines()
        .find_map(|l| l.split_once(":memory:").map(|(_, p)| p.to_string()))
        .unwrap();
    let mem_dir =
        std::path::Path::new("/sys/fs/cgroup/memory").join(mem_path.trim_start_matches('/'));
    assert!(mem_dir.exists());
    assert!(
        !leftover_pod_cgroups(h).is_empty(),
        "the pod has a cgroup while it runs"
    );
    let ip_file = h
        .cni_state
        .join("ipam")
        .join(format!("rkube-{}", h.bridge))
        .join(&ip);
    h.rt.remove_pod_sandbox(&sb.0).await.unwrap();
    assert!(h
        .rt
        .list_pod_sandboxes(&SandboxFilter::default())
        .await
        .unwrap()
        .is_empty());
    let left =
        h.rt.list_containers(&ContainerFilter::default())
            .await
            .unwrap();
    assert!(left.is_empty(), "{left:?}");
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the process is gone"
    );
    assert!(!netns.exists(), "the network namespace is gone");
    assert!(!mem_dir.exists(), "the cgroup is gone");
    assert_eq!(
        leftover_pod_cgroups(h),
        Vec::<std::path::PathBuf>::new(),
        "no pod cgroup is left"
    );
    assert!(
        mount_lines_under(h.dir.path()).is_empty(),
        "no mounts are left"
    );
    let ipam_files: Vec<_> = walk(&h.cni_state)
        .into_iter()
        .filter(|p| p.ends_with(&ip))
        .collect();
    assert!(
        ipam_files.is_empty(),
        "the IP {ip} is released: {ipam_files:?} ({})",
        ip_file.display()
    );
    assert_eq!(
        kind_of(h.rt.pod_sandbox_status(&sb.0).await),
        ErrorKind::NotFound
    );
    h.rt.remove_pod_sandbox(&sb.0)
        .await
        .expect("removing twice is fine");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

pub async fn bad_requests_get_typed_errors_and_leak_nothing(h: &Harness) {
    let sb = h.sandbox("bad").await;
    let mut c = h.container("ghost", &["true"]);
    c.image = "127.0.0.1:1/not/here:latest".into();
    assert_eq!(
        kind_of(h.rt.create_container(&sb.0, &c, &sb.1).await),
        ErrorKind::NotFound
    );
    // A command that does not exist: the start fails, clearly, and the
    // container can be removed without leaving anything.
    let c = h.container("nocmd", &["/no/such/binary"]);
    let id = h.rt.create_container(&sb.0, &c, &sb.1).await.unwrap();
    let err = match h.rt.start_container(&id).await {
        Ok(()) => panic!("starting a missing binary must fail"),
        Err(e) => e,
    };
    assert!(err.message.contains("/no/such/binary"), "{err}");
    h.rt.remove_container(&id).await.unwrap();
    assert_eq!(
        kind_of(h.rt.container_status(&id).await),
        ErrorKind::NotFound
    );
    let exited = h.start(&sb, h.container("done", &["true"])).await;
    h.wait_exited(&exited).await;
    let exec = h.rt.exec(
        &exited,
        ExecRequest {
            cmd: vec!["true".into()],
            ..Default::default()
        },
    );
    assert_eq!(kind_of(exec.await), ErrorKind::FailedPrecondition);
    assert_eq!(
        kind_of(h.rt.container_status("nope").await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind_of(h.rt.start_container("nope").await),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind_of(h.rt.pod_sandbox_status("nope").await),
        ErrorKind::NotFound
    );
    let mut relative = h.container("relative", &["true"]);
    relative.working_dir = "tmp".into();
    assert_eq!(
        kind_of(h.rt.create_container(&sb.0, &relative, &sb.1).await),
        ErrorKind::InvalidSpec
    );
    h.rt.remove_pod_sandbox(&sb.0).await.unwrap();
    assert!(
        mount_lines_under(h.dir.path()).is_empty(),
        "no mounts are left"
    );
}

pub async fn images_import_pull_and_remove(h: &Harness) {
    use runtime::testing::{images, registry::TestRegistry};
    let dir = h.dir.path();
    // A docker-save archive under another name.
    let tar = dir.join("save.tar");
    images::write_docker_save_tar(
        &tar,
        &[images::busybox().named("example.test/saved/busybox:1")],
    );
    let imported = h.rt.import_image(&tar).await.unwrap();
    assert!(
        imported[0]
            .repo_tags
            .iter()
            .any(|t| t.ends_with("saved/busybox:1")),
        "{imported:?}"
    );
    assert!(h
        .rt
        .image_status("example.test/saved/busybox:1")
        .await
        .unwrap()
        .is_some());
    // Pull from a real registry on loopback.
    let registry = TestRegistry::start();
    let host = registry.host_port().to_string();
    images::push(&host, &images::busybox(), "lib/busybox", "v1").await;
    let reference = format!("{host}/lib/busybox:v1");
    let pulled = h.rt.pull_image(&reference, None).await.unwrap();
    assert!(
        pulled.repo_digests.iter().any(|d| d.contains("@sha256:")),
        "{pulled:?}"
    );
    let listed = h.rt.list_images().await.unwrap();
    assert!(
        listed.iter().any(|i| i.repo_tags.contains(&reference)),
        "{listed:?}"
    );
    // The pulled image runs.
    let sb = h.sandbox("pulled").await;
    let mut c = h.container("pulled", &["echo", "pulled image runs"]);
    c.image = reference.clone();
    let (code, logs, _) = h.run_to_exit(&sb, c).await;
    assert_eq!((code, logs.as_str()), (0, "pulled image runs\n"));
    h.rt.remove_pod_sandbox(&sb.0).await.unwrap();
    h.rt.remove_image(&reference).await.unwrap();
    assert!(h.rt.image_status(&reference).await.unwrap().is_none());
    // Errors: a missing repository, an unreachable registry, a corrupt archive.
    let missing =
        h.rt.pull_image(&format!("{host}/lib/nothing:v1"), None)
            .await;
    assert_eq!(kind_of(missing), ErrorKind::ImagePullFailed);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let begin = Instant::now();
    let unreachable =
        h.rt.pull_image(&format!("127.0.0.1:{port}/x:1"), None)
            .await;
    assert_eq!(kind_of(unreachable), ErrorKind::ImagePullFailed);
    assert!(begin.elapsed() < Duration::from_secs(20));
    let corrupt = dir.join("corrupt.tar");
    let mut bytes = std::fs::read(&tar).unwrap();
    bytes.truncate(bytes.len() / 2);
    std::fs::write(&corrupt, bytes).unwrap();
    assert_eq!(
        kind_of(h.rt.import_image(&corrupt).await),
        ErrorKind::InvalidImage
    );
}

pub async fn host_port_reaches_the_pod(h: &Harness) {
    let host_port = runtime::testing::registry::free_port();
    let mut config = h.sandbox_config("hostport");
    config.port_mappings = vec![PortMapping {
        protocol: Protocol::Tcp,
        container_port: 8080,
        host_port,
        host_ip: String::new(),
    }];
    let id = h.rt.run_pod_sandbox(&config).await.unwrap();
    let sb = (id, config);
    h.start(&sb, web_server(h)).await;
    let ip = h.rt.pod_sandbox_status(&sb.0).await.unwrap().ips[0].clone();
    // Through the node's own address (loopback is a special case the
    // portmap plugin only handles with route_localnet).
    let gateway = format!("{}.1", ip.rsplit_once('.').unwrap().0);
    let body = eventually(Duration::from_secs(10), "the host port to answer", || {
        let addr = format!("{gateway}:{host_port}");
        async move {
            let mut conn = tokio::net::TcpStream::connect(&addr).await.ok()?;
            conn.write_all(b"GET /i.html HTTP/1.0\r\n\r\n").await.ok()?;
            let mut out = String::new();
            conn.read_to_string(&mut out).await.ok()?;
            out.ends_with("hello\n").then_some(out)
        }
    })
    .await;
    assert!(body.contains("200 OK"), "{body}");
    h.rt.remove_pod_sandbox(&sb.0).await.unwrap();
    let refused = tokio::net::TcpStream::connect(format!("{gateway}:{host_port}")).await;
    assert!(
        refused.is_err(),
        "the host port is closed once the sandbox is gone"
    );
}
