//! `kubectl-rolling_update`: a kubectl plugin (on PATH, kubectl runs it
//! as `kubectl rolling-update`) with the behaviour of the command kubectl
//! removed in 1.18: replace a ReplicationController's pods with a new
//! image one at a time, keeping the desired count available and never
//! more than one extra pod, then retire the old controller (and take over
//! its name when no new name is given); or, with `--rollback`, undo an
//! interrupted update.

mod plan;

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use k8s_openapi::api::core::v1::{Pod, ReplicationController};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use plan::Step;

#[derive(Parser)]
#[command(
    name = "kubectl rolling-update",
    about = "Perform a rolling update of the given ReplicationController"
)]
struct Args {
    /// The controller to update.
    old: String,
    /// The new controller's name (default: the old name with a hash, renamed
    /// back to the old name at the end).
    new: Option<String>,
    /// The image for the new controller's pods.
    #[arg(long)]
    image: Option<String>,
    /// The container whose image changes (default: the only one).
    #[arg(long)]
    container: Option<String>,
    /// Abort an update that was interrupted: scale the old controller back
    /// up and delete the new one.
    #[arg(long)]
    rollback: bool,
    /// Time to wait between updating pods.
    #[arg(long, default_value = "1m0s", value_parser = parse_duration)]
    update_period: Duration,
    /// Time between polls of the controllers' status.
    #[arg(long, default_value = "3s", value_parser = parse_duration)]
    poll_interval: Duration,
    /// Maximum time to wait for a pod to become ready.
    #[arg(long, default_value = "5m0s", value_parser = parse_duration)]
    timeout: Duration,
    #[arg(short, long)]
    namespace: Option<String>,
}

/// Go-style durations (`1m0s`, `500ms`), as kubectl's flags took them.
fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args = Args::parse();
    if let Err(e) = run(args).await {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn replicas(rc: &ReplicationController) -> i32 {
    rc.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

fn ready(rc: &ReplicationController) -> i32 {
    rc.status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
}

async fn get(
    rcs: &Api<ReplicationController>,
    name: &str,
) -> anyhow::Result<ReplicationController> {
    rcs.get(name)
        .await
        .with_context(|| format!("replicationcontrollers \"{name}\""))
}

async fn scale(rcs: &Api<ReplicationController>, name: &str, n: i32) -> anyhow::Result<()> {
    rcs.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": n}})),
    )
    .await?;
    Ok(())
}

/// Moves `desired` pods from `down` to `up`, printing kubectl's lines.
async fn roll(
    rcs: &Api<ReplicationController>,
    up: &str,
    down: &str,
    desired: i32,
    args: &Args,
) -> anyhow::Result<()> {
    let mut waiting_since = Instant::now();
    loop {
        let (u, d) = (get(rcs, up).await?, get(rcs, down).await?);
        match plan::next(desired, replicas(&u), ready(&u), replicas(&d), ready(&d)) {
            Step::Done => return Ok(()),
            Step::ScaleUpNew(n) => {
                println!("Scaling {up} up to {n}");
                scale(rcs, up, n).await?;
                waiting_since = Instant::now();
            }
            Step::ScaleDownOld(n) => {
                println!("Scaling {down} down to {n}");
                scale(rcs, down, n).await?;
                tokio::time::sleep(args.update_period).await;
                waiting_since = Instant::now();
            }
            Step::Wait => {
                if waiting_since.elapsed() > args.timeout {
                    bail!("timed out waiting for any update progress to be made");
                }
                tokio::time::sleep(args.poll_interval).await;
            }
        }
    }
}

/// Labels the old controller's pods, template and selector with its own
/// deployment key, so its selector no longer covers the new pods.
async fn add_deployment_key(
    rcs: &Api<ReplicationController>,
    pods: &Api<Pod>,
    old: &ReplicationController,
    key: &str,
) -> anyhow::Result<()> {
    let name = old.metadata.name.clone().unwrap_or_default();
    let selector = old
        .spec
        .as_ref()
        .and_then(|s| s.selector.clone())
        .unwrap_or_default();
    if selector.contains_key(plan::DEPLOYMENT_KEY) {
        return Ok(());
    }
    let label = json!({plan::DEPLOYMENT_KEY: key});
    rcs.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"template": {"metadata": {"labels": label}}}})),
    )
    .await?;
    let query: Vec<String> = selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
    for pod in pods
        .list(&ListParams::default().labels(&query.join(",")))
        .await?
    {
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        pods.patch(
            &pod_name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": label}})),
        )
        .await?;
    }
    rcs.patch(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"selector": label}})),
    )
    .await?;
    Ok(())
}

async fn run(args: Args) -> anyhow::Result<()> {
    let client = kube::Client::try_default().await?;
    let ns = args
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let rcs: Api<ReplicationController> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client, &ns);
    let old = get(&rcs, &args.old).await?;
    if args.rollback {
        let Some(new) = args.new.as_deref() else {
            bail!("--rollback needs the name of the new controller");
        };
        let new_rc = get(&rcs, new).await?;
        let desired = new_rc
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(plan::DESIRED_REPLICAS))
            .and_then(|d| d.parse().ok())
            .unwrap_or(replicas(&old) + replicas(&new_rc));
        println!("Setting \"{}\" replicas to {desired}", args.old);
        println!("Continuing update with existing controller {}.", args.old);
        println!(
            "{}",
            plan::plan_line(&args.old, new, replicas(&new_rc), desired)
        );
        roll(&rcs, &args.old, new, desired, &args).await?;
        println!("Update succeeded. Deleting {new}");
        rcs.delete(new, &DeleteParams::background()).await?;
        println!("replicationcontroller/{} rolled back", args.old);
        return Ok(());
    }
    let Some(image) = args.image.as_deref() else {
        bail!("must specify --image for the new controller");
    };
    let current = old
        .spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.spec.as_ref())
        .map(|s| {
            s.containers
                .iter()
                .filter_map(|c| c.image.clone())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    if args.container.is_none() && current.len() == 1 && current[0] == image {
        bail!("Specified --image must be distinct from existing container image");
    }
    let desired = replicas(&old);
    let old_template = serde_json::to_string(&old.spec.as_ref().and_then(|s| s.template.clone()))?;
    let old_key = plan::hash(&old_template);
    let new_key = plan::hash(&format!("{old_template}{image}"));
    let new_name = args
        .new
        .clone()
        .unwrap_or_else(|| format!("{}-{new_key}", args.old));
    add_deployment_key(&rcs, &pods, &old, &old_key).await?;
    let old = get(&rcs, &args.old).await?;
    match rcs.get_opt(&new_name).await? {
        Some(_) => println!("Continuing update with existing controller {new_name}."),
        None => {
            let new = plan::new_controller(
                &old,
                &new_name,
                image,
                args.container.as_deref(),
                &new_key,
                desired,
            )
            .map_err(anyhow::Error::msg)?;
            rcs.create(&PostParams::default(), &new).await?;
            println!("Created {new_name}");
        }
    }
    println!(
        "{}",
        plan::plan_line(&new_name, &args.old, replicas(&old), desired)
    );
    roll(&rcs, &new_name, &args.old, desired, &args).await?;
    println!("Update succeeded. Deleting old controller: {}", args.old);
    rcs.delete(&args.old, &DeleteParams::background()).await?;
    if args.new.is_some() {
        println!(
            "replicationcontroller/{} rolling updated to \"{new_name}\"",
            args.old
        );
        return Ok(());
    }
    // Take over the old name: the pods are orphaned from the temporary
    // controller and adopted by one with the old name and the same spec.
    println!("Renaming {new_name} to {}", args.old);
    let new = get(&rcs, &new_name).await?;
    while rcs.get_opt(&args.old).await?.is_some() {
        tokio::time::sleep(args.poll_interval.min(Duration::from_millis(200))).await;
    }
    rcs.delete(&new_name, &DeleteParams::orphan()).await?;
    let selector = new
        .spec
        .as_ref()
        .and_then(|s| s.selector.clone())
        .unwrap_or_default();
    let query: Vec<String> = selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let deadline = Instant::now() + args.timeout;
    loop {
        let gone = rcs.get_opt(&new_name).await?.is_none();
        let orphans = pods
            .list(&ListParams::default().labels(&query.join(",")))
            .await?
            .items
            .iter()
            .all(|p| {
                p.metadata
                    .owner_references
                    .as_ref()
                    .is_none_or(|r| r.is_empty())
            });
        if gone && orphans {
            break;
        }
        if Instant::now() > deadline {
            bail!("timed out waiting for {new_name} to let go of its pods");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut renamed = new.clone();
    renamed.metadata = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        name: Some(args.old.clone()),
        namespace: new.metadata.namespace.clone(),
        labels: new.metadata.labels.clone(),
        annotations: new.metadata.annotations.clone(),
        ..Default::default()
    };
    renamed.status = None;
    rcs.create(&PostParams::default(), &renamed).await?;
    println!("replicationcontroller/{} rolling updated", args.old);
    Ok(())
}
