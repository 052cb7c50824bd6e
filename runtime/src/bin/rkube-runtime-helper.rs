//! The youki backend's helper processes as a binary of their own, for this
//! crate's tests (the `rkube` binary dispatches to the same entry point).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match runtime::youki::helper_main(&args) {
        Some(code) => std::process::exit(code),
        None => {
            eprintln!("usage: rkube-runtime-helper youki-shim <dir> | youki-exec <request>");
            std::process::exit(2);
        }
    }
}
