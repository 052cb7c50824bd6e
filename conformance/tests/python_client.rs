//! The official Python client (from PyPI, in a virtualenv the test makes)
//! against a real `rkube server`: it decodes every response into its
//! generated OpenAPI models, so shapes that differ from upstream's fail
//! here. The script is `tests/python/client_pods_services.py`.

use std::path::Path;
use std::process::Command;

use conformance::Cluster;

#[test]
fn python_client_creates_lists_watches_and_deletes_pods_and_services() {
    let venv = tempfile::tempdir().unwrap();
    let python = conformance::python_venv(venv.path(), &["kubernetes"]);
    let c = Cluster::start();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/client_pods_services.py");
    let out = Command::new(python)
        .arg(script)
        .arg(&c.kubeconfig)
        .output()
        .expect("python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.trim_end().ends_with("ok"),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("watched [('ADDED', 'py-pod')"), "{stdout}");
}
