//! Long runs show progress on a terminal and nothing when piped: `switchboard simulate` once
//! under a pseudo-terminal (`script` from util-linux gives it one) and once with stderr piped.

use std::process::Command;

fn example(file: &str) -> String {
    format!("{}/../../config/simulate/{file}", env!("CARGO_MANIFEST_DIR"))
}

/// About two seconds of simulation in a debug build (the simulator's crates build optimised):
/// long enough for the first progress line, which waits 0.3 s.
const ARGS: [&str; 2] = ["--generate", "30000"];

#[test]
fn a_terminal_sees_the_progress_of_a_long_simulation() {
    let command = format!(
        "{} simulate --config {} {} {} >/dev/null",
        env!("CARGO_BIN_EXE_switchboard"),
        example("skills.toml"),
        ARGS[0],
        ARGS[1]
    );
    let out = Command::new("script").args(["-qec", &command, "/dev/null"]).output().expect("script (util-linux) runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tty = String::from_utf8_lossy(&out.stdout);
    let updates: Vec<&str> = tty.split('\r').filter(|l| l.contains("skills.toml: simulated ")).collect();
    assert!(!updates.is_empty(), "a progress line on the terminal: {tty:?}");
    assert!(updates.iter().all(|u| u.contains(" of ") && u.ends_with("conversations\x1b[K")), "{updates:?}");
    assert!(tty.contains("conversations, "), "the summary line still follows: {tty:?}");
}

#[test]
fn a_piped_simulation_prints_no_progress() {
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["simulate", "--config", &example("skills.toml"), ARGS[0], ARGS[1]])
        .output()
        .expect("the binary runs");
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains('\r') && !stderr.contains('\x1b'), "{stderr:?}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "only the summary: {stderr:?}");
    assert!(lines[0].contains("skills.toml: ") && lines[0].contains(" conversations, "), "{stderr:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("KPI ") && !stdout.contains('\r') && !stdout.contains("simulated "), "{stdout}");
}
