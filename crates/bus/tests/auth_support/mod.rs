//! What the authentication tests need around a real nats-server: NATS JWTs for operator mode, a
//! CA with server and client certificates, and files for secrets.

pub mod certs;
pub mod jwt;

use std::path::{Path, PathBuf};

/// Writes `contents` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}
