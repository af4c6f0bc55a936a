//! The `[kb]` section and `switchboard kb check|search` (`docs/kb.md`).

use switchboard_kb::{Filter, Kb, Lang};

pub use crate::kb_config::KbConfig;

/// How `kb search` prints hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SearchFormat {
    /// An aligned table.
    #[default]
    Table,
    /// A JSON array of hits.
    Json,
}

/// `kb check`: "N articles, M replies: ok" and 0, or every problem as `file:line: reason` and 1.
pub fn check(config: &KbConfig) -> crate::cli::Output {
    let folder = match config.folder() {
        Ok(f) => f,
        Err(reason) => return crate::cli::Output { stdout: format!("error: {reason}\n"), code: 2 },
    };
    match Kb::load(folder, config.limits()) {
        Ok(kb) => crate::cli::Output {
            stdout: format!("{} articles, {} replies: ok\n", kb.articles().count(), kb.replies().count()),
            code: 0,
        },
        Err(problems) => {
            let mut out: String = problems.iter().map(|p| format!("{p}\n")).collect();
            out.push_str(&format!("{} problem(s)\n", problems.len()));
            crate::cli::Output { stdout: out, code: 1 }
        }
    }
}

/// `kb search`: the ranked hits (every hit, with `min_score` marked); 1 when the folder has
/// problems.
pub fn search(
    config: &KbConfig,
    question: &str,
    lang: Option<Lang>,
    limit: usize,
    format: SearchFormat,
) -> crate::cli::Output {
    let loaded = config.folder().map_err(|r| vec![r]).and_then(|f| {
        Kb::load(f, config.limits()).map_err(|problems| problems.iter().map(ToString::to_string).collect())
    });
    let kb = match loaded {
        Ok(kb) => kb,
        Err(lines) => return crate::cli::Output { stdout: lines.join("\n") + "\n", code: 1 },
    };
    let detected = lang.unwrap_or_else(|| switchboard_kb::detect_language(question));
    let hits = kb.search(question, Some(detected), limit, &Filter::default());
    let stdout = match format {
        SearchFormat::Json => {
            let rows: Vec<serde_json::Value> = hits
                .iter()
                .map(|h| {
                    serde_json::json!({
                        "id": h.id,
                        "title": h.title,
                        "score": (f64::from(h.score) * 1000.0).round() / 1000.0,
                        "above_min_score": h.score >= config.min_score,
                        "url": h.url,
                        "excerpt": h.excerpt(200),
                    })
                })
                .collect();
            serde_json::to_string_pretty(&rows).unwrap_or_default() + "\n"
        }
        SearchFormat::Table => {
            let mut out = format!(
                "language {}, terms [{}], min_score {}\n",
                detected.code(),
                kb.terms(question, detected).join(" "),
                config.min_score
            );
            if hits.is_empty() {
                out.push_str("no hits\n");
            }
            let width = hits.iter().map(|h| h.id.chars().count()).max().unwrap_or(2).max(2);
            for h in &hits {
                let mark = if h.score >= config.min_score { "" } else { "  (below min_score)" };
                out.push_str(&format!("{:>8.3}  {:<width$}  {}{mark}\n", h.score, h.id, h.title));
            }
            out
        }
    };
    crate::cli::Output { stdout, code: 0 }
}

/// The knowledge base the daemon's L0 bot answers from: `None` when `[kb]` is off; an error
/// naming every problem when the folder does not load (the daemon does not start on a broken
/// knowledge base it was told to use).
pub fn load_for_daemon(config: &KbConfig) -> anyhow::Result<Option<switchboard_router::KnowledgeBase>> {
    if !config.enabled {
        return Ok(None);
    }
    let folder = config.folder().map_err(anyhow::Error::msg)?;
    let kb = Kb::load(folder, config.limits()).map_err(|problems| {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        anyhow::anyhow!("knowledge base {} (`[kb] path`) has problems:\n{}", folder.display(), lines.join("\n"))
    })?;
    tracing::info!(
        folder = %folder.display(),
        articles = kb.articles().count(),
        replies = kb.replies().count(),
        "knowledge base loaded"
    );
    Ok(Some(switchboard_router::KnowledgeBase::new(kb, config.min_score)))
}

/// Polls the folder every `reload_secs` and serves a changed one once it loads without problems;
/// a broken change is reported (each file, line and reason) and the previous articles stay.
pub async fn watch(kb: switchboard_router::KnowledgeBase, config: KbConfig, stop: tokio_util::sync::CancellationToken) {
    if config.reload_secs == 0 {
        return;
    }
    let Ok(folder) = config.folder().cloned() else { return };
    // The watcher's own copy answers "did anything change?"; readers get a fresh load.
    let Ok(mut watched) = Kb::load(&folder, config.limits()) else { return };
    let every = std::time::Duration::from_secs(config.reload_secs);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let (limits, path) = (config.limits(), folder.clone());
        let checked = tokio::task::spawn_blocking(move || {
            let result = watched.reload_if_changed().map(|changed| changed.then(|| Kb::load(&path, limits)));
            (watched, result)
        })
        .await;
        let Ok((back, result)) = checked else { return };
        watched = back;
        match result {
            Ok(None) => {}
            Ok(Some(Ok(fresh))) => {
                tracing::info!(folder = %folder.display(), articles = fresh.articles().count(), "knowledge base reloaded");
                kb.replace(fresh);
            }
            Ok(Some(Err(problems))) | Err(problems) => {
                for p in &problems {
                    tracing::warn!(problem = %p, "knowledge base change refused; the previous articles stay");
                }
            }
        }
    }
}
