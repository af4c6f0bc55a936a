//! Replays every checked-in fuzz input (the seed corpora in `fuzz/corpus/<target>/` and the
//! inputs of fixed bugs in `fuzz/regressions/<target>/`) through the fuzz targets' bodies, so a
//! regression shows up in `cargo test` without running libFuzzer.

use std::path::{Path, PathBuf};

use switchboard_fuzz_targets::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> =
        entries.map(|e| e.unwrap_or_else(|e| panic!("{}: {e}", dir.display())).path()).collect();
    files.retain(|p| p.is_file());
    files.sort();
    files
}

#[test]
fn every_target_has_a_seed_corpus() {
    for (name, _) in TARGETS {
        let seeds = files(&fuzz_dir().join("corpus").join(name));
        assert!(seeds.len() >= 3, "fuzz/corpus/{name} has {} seeds", seeds.len());
    }
}

#[test]
fn seed_corpora_and_regressions_pass_every_target() {
    let mut replayed = 0;
    for (name, target) in TARGETS {
        for kind in ["corpus", "regressions"] {
            for file in files(&fuzz_dir().join(kind).join(name)) {
                let data = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
                // A panic names the file, so the failing input is easy to find and to fuzz from.
                let outcome = std::panic::catch_unwind(|| target(&data));
                assert!(outcome.is_ok(), "{name} panicked on {}", file.display());
                replayed += 1;
            }
        }
    }
    assert!(replayed >= TARGETS.len() * 3, "only {replayed} inputs replayed");
}
