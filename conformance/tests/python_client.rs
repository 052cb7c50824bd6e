//! The official Python client (from PyPI, in a virtualenv the test makes)
//! against a real `rkube server`: it decodes every response into its
//! generated OpenAPI models, so shapes that differ from upstream's fail
//! here. The script is `tests/python/client_pods_services.py`.

use conformance::Cluster;

#[test]
fn python_client_creates_lists_watches_and_deletes_pods_and_services() {
    let venv = tempfile::tempdir().unwrap();
    let python = conformance::python_venv(venv.path(), &["kubernetes"]);
    let c = Cluster::start();
    let stdout = conformance::python_script_ok(
        &python,
        "client_pods_services.py",
        &[c.kubeconfig.as_os_str()],
    );
    assert!(stdout.contains("watched [('ADDED', 'py-pod')"), "{stdout}");
}
