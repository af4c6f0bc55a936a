//! Who this process is among others: the host's name.

/// This machine's host name, for the record (the `HOSTNAME` variable is not exported by every
/// service manager, so the kernel's name is read first).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "host".into())
}
