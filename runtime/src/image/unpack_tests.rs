use std::os::unix::fs::{FileTypeExt, MetadataExt};

use super::*;
use crate::testing::images::{gzip, LayerBuilder, FIXED_MTIME};

fn unpack(tar: &[u8]) -> (tempfile::TempDir, Result<Unpacked>) {
    let dir = tempfile::tempdir().unwrap();
    let result = unpack_reader(io::Cursor::new(tar.to_vec()), &dir.path().join("layer"));
    (dir, result)
}

#[test]
fn whiteouts_become_overlay_whiteouts() {
    let mut l = LayerBuilder::new();
    l.dir("a", 0o755)
        .file("a/.wh..wh..opq", 0o644, b"")
        .file("a/kept", 0o644, b"x")
        .file(".wh.gone", 0o644, b"")
        .file("deep/dir/.wh.file", 0o644, b"");
    let (dir, result) = unpack(&l.finish());
    result.unwrap();
    let root = dir.path().join("layer");
    for whiteout in [root.join("gone"), root.join("deep/dir/file")] {
        let m = fs::symlink_metadata(&whiteout).unwrap();
        assert!(m.file_type().is_char_device(), "{}", whiteout.display());
        assert_eq!(m.rdev(), 0, "{}", whiteout.display());
    }
    assert!(!root.join(".wh.gone").exists());
    assert!(!root.join("a/.wh..wh..opq").exists());
    let opaque = xattr::get(root.join("a"), OPAQUE_XATTR).unwrap();
    assert_eq!(opaque.as_deref(), Some(&b"y"[..]));
    assert_eq!(fs::read(root.join("a/kept")).unwrap(), b"x");
}

#[test]
fn keeps_owners_modes_links_and_mtimes() {
    let mut l = LayerBuilder::new();
    l.dir("bin", 0o750)
        .file_owned("bin/tool", 0o4755, 1000, 2000, b"#!/bin/sh\n")
        .symlink("bin/alias", "tool")
        .symlink("abs", "/etc/passwd")
        .hardlink("bin/tool2", "bin/tool")
        .dir("tmp", 0o1777);
    let tar = l.finish();
    let (dir, result) = unpack(&gzip(&tar));
    let unpacked = result.unwrap();
    assert_eq!(unpacked.diff_id, crate::image::digest::sha256_of(&tar));
    assert_eq!(unpacked.size, 10);
    let root = dir.path().join("layer");

    let tool = fs::symlink_metadata(root.join("bin/tool")).unwrap();
    assert_eq!((tool.uid(), tool.gid()), (1000, 2000));
    assert_eq!(tool.mode() & 0o7777, 0o4755);
    assert_eq!(tool.mtime(), FIXED_MTIME as i64);
    let link = fs::symlink_metadata(root.join("bin/tool2")).unwrap();
    assert_eq!(link.ino(), tool.ino());
    assert_eq!(
        fs::read_link(root.join("bin/alias")).unwrap(),
        Path::new("tool")
    );
    assert_eq!(
        fs::read_link(root.join("abs")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert_eq!(
        fs::symlink_metadata(root.join("abs")).unwrap().mtime(),
        FIXED_MTIME as i64
    );

    let bin = fs::metadata(root.join("bin")).unwrap();
    assert_eq!(bin.mode() & 0o7777, 0o750);
    assert_eq!(bin.mtime(), FIXED_MTIME as i64);
    assert_eq!(
        fs::metadata(root.join("tmp")).unwrap().mode() & 0o7777,
        0o1777
    );
}

#[test]
fn plain_and_gzip_layers_have_the_same_diff_id() {
    let mut l = LayerBuilder::new();
    l.file("f", 0o644, b"hello");
    let tar = l.finish();
    let (_d1, plain) = unpack(&tar);
    let (_d2, gz) = unpack(&gzip(&tar));
    assert_eq!(plain.unwrap().diff_id, gz.unwrap().diff_id);
}

#[test]
fn rejects_entries_escaping_the_layer() {
    type Build = fn(&mut LayerBuilder);
    let cases: [(&str, Build); 5] = [
        ("dot-dot", |l| {
            l.raw(EntryType::Regular, "../escaped", None, b"x");
        }),
        ("inner dot-dot", |l| {
            l.dir("a", 0o755)
                .raw(EntryType::Regular, "a/../../escaped", None, b"x");
        }),
        ("absolute symlink parent", |l| {
            l.symlink("link", "/").file("link/escaped", 0o644, b"x");
        }),
        ("relative symlink parent", |l| {
            l.symlink("up", "../..").file("up/escaped", 0o644, b"x");
        }),
        ("hard link out", |l| {
            l.raw(EntryType::Link, "hl", Some("../../etc/passwd"), b"");
        }),
    ];
    for (what, build) in cases {
        let mut l = LayerBuilder::new();
        build(&mut l);
        let (dir, result) = unpack(&l.finish());
        let err = result.expect_err(what);
        assert_eq!(err.kind(), ErrorKind::InvalidImage, "{what}: {err}");
        assert!(!dir.path().join("escaped").exists(), "{what}");
        assert!(!Path::new("/escaped").exists(), "{what}");
    }
}

#[test]
fn corrupt_layers_are_invalid_image() {
    let mut l = LayerBuilder::new();
    l.file("f", 0o644, &vec![7u8; 100_000]);
    let gz = gzip(&l.finish());
    let (_d, result) = unpack(&gz[..gz.len() / 2]);
    assert_eq!(result.unwrap_err().kind(), ErrorKind::InvalidImage);
    let (_d, result) = unpack(&[0x28, 0xb5, 0x2f, 0xfd, 0, 0]);
    assert_eq!(result.unwrap_err().kind(), ErrorKind::InvalidImage);
}
