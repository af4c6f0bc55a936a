//! The minimum NATS server version and its check.

/// Oldest NATS server Switchboard supports (async-nats cannot create KV buckets on 2.9).
pub const MIN_SERVER_VERSION: &str = "2.10.0";

/// Checks a server's reported version (e.g. `2.10.4`, `2.11.0-RC.1`) against [`MIN_SERVER_VERSION`].
/// Returns `Err(found)` when it is older or unparsable.
pub fn check_server_version(found: &str) -> Result<(), String> {
    let parse = |v: &str| -> Option<(u64, u64, u64)> {
        let core = v.trim().trim_start_matches('v').split(['-', '+']).next()?;
        let mut parts = core.split('.').map(|p| p.parse::<u64>().ok());
        Some((parts.next()??, parts.next()??, parts.next().flatten().unwrap_or(0)))
    };
    match (parse(found), parse(MIN_SERVER_VERSION)) {
        (Some(f), Some(min)) if f >= min => Ok(()),
        _ => Err(found.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::check_server_version;

    #[test]
    fn versions() {
        for ok in ["2.10.0", "2.10.4", "2.11.0-RC.1", "2.15.1", "3.0.0", "v2.12.1"] {
            assert_eq!(check_server_version(ok), Ok(()), "{ok}");
        }
        for old in ["2.9.10", "2.2.0", "1.4.1", "", "banana", "2"] {
            assert_eq!(check_server_version(old), Err(old.to_string()), "{old}");
        }
    }
}
