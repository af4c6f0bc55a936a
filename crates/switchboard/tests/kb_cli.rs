//! `switchboard kb check|search` on real folders, through the binary.

use std::path::Path;
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard")).args(args).output().expect("the binary runs")
}

/// The shipped default configuration with `[kb] path` pointing at `folder` (`None`: no path).
fn config_for(dir: &Path, folder: Option<&Path>) -> String {
    let default =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/default.toml")).unwrap();
    let line = "path = \"config/kb\"\n";
    assert!(default.contains(line), "config/default.toml sets [kb] path");
    let with = folder.map(|f| format!("path = {:?}\n", f.display().to_string())).unwrap_or_default();
    let file = dir.join("switchboard.toml");
    std::fs::write(&file, default.replace(line, &with)).unwrap();
    file.display().to_string()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn check_passes_the_shipped_folder_and_names_every_problem_of_a_broken_one() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/kb");
    let out = run(&["kb", "check", "--config", &config_for(dir.path(), Some(&shipped))]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert_eq!(stdout(&out), "48 articles, 4 replies: ok\n");

    let folder = dir.path().join("kb");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("a.md"), "---\nid: a\ntitle: A\nlanguage: en\n---\nbody\n").unwrap();
    std::fs::write(folder.join("b.md"), "---\nid: a\ntitle: B\nlanguage: fr\n---\nbody\n").unwrap();
    std::fs::write(folder.join("c.md"), "---\nid: c\ntitle: [C\nlanguage: en\n---\nbody\n").unwrap();
    let out = run(&["kb", "check", "--config", &config_for(dir.path(), Some(&folder))]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let (a, b, c) = (folder.join("a.md"), folder.join("b.md"), folder.join("c.md"));
    assert!(text.contains(&format!("{}:4: unknown language `fr` (known: en, ru)\n", b.display())), "{text}");
    // The YAML error, in the file's line numbers: noticed on line 4, the list opened on line 3.
    let bad = text.lines().find(|l| l.starts_with(&format!("{}:4: bad front matter: ", c.display()))).expect(&text);
    assert!(bad.contains("at line 4") && bad.contains("at line 3"), "{bad}");
    assert!(text.ends_with("2 problem(s)\n"), "{text}");
    // With b's language fixed, the duplicate id shows, naming both files.
    std::fs::write(folder.join("b.md"), "---\nid: a\ntitle: B\nlanguage: en\n---\nbody\n").unwrap();
    std::fs::remove_file(&c).unwrap();
    let text = stdout(&run(&["kb", "check", "--config", &config_for(dir.path(), Some(&folder))]));
    assert!(text.contains(&format!("{}:2: duplicate id `a`, also in {}:2\n", b.display(), a.display())), "{text}");

    // No [kb] path: a usage error, not "ok".
    let out = run(&["kb", "check", "--config", &config_for(dir.path(), None)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).contains("no `[kb] path`"), "{}", stdout(&out));
}

#[test]
fn search_prints_ranked_hits_as_json_and_as_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/kb");
    let config = config_for(dir.path(), Some(&shipped));
    let out =
        run(&["kb", "search", "--config", &config, "--format", "json", "--limit", "3", "не проходит оплата картой"]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let hits: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("a JSON array");
    assert!(!hits.is_empty() && hits.len() <= 3);
    assert_eq!(hits[0]["id"], "payment-failed-ru");
    assert_eq!(hits[0]["title"], "Оплата не проходит");
    assert_eq!(hits[0]["above_min_score"], true);
    let scores: Vec<f64> = hits.iter().map(|h| h["score"].as_f64().expect("a score")).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "best first: {scores:?}");

    // --lang en on a Russian question finds nothing in English articles.
    let out = run(&["kb", "search", "--config", &config, "--lang", "en", "--format", "json", "оплата"]);
    assert_eq!(stdout(&out).trim(), "[]");
    // Query syntax is plain text.
    let out = run(&["kb", "search", "--config", &config, "refund:\"(* -"]);
    assert_eq!(out.status.code(), Some(0));
    let table = stdout(&out);
    assert!(table.starts_with("language en, terms [refund], min_score 4.7\n"), "{table}");
    assert!(table.lines().nth(1).is_some_and(|l| l.contains("refunds-en")), "{table}");
    let out = run(&["kb", "search", "--config", &config, "--lang", "de", "x"]);
    assert_eq!(out.status.code(), Some(2), "clap refuses an unknown language");
}
