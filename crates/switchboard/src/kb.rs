//! The `[kb]` section and `switchboard kb check|search` (`docs/kb.md`).

use std::path::PathBuf;

use serde::Deserialize;
use switchboard_kb::{Filter, Kb, Lang, Limits};

/// The `[kb]` section: the knowledge base folder and how sure a hit must be.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KbConfig {
    /// Whether the daemon loads the knowledge base (the L0 step uses it).
    pub enabled: bool,
    /// The folder of Markdown articles and saved replies (relative to the working directory).
    pub path: Option<PathBuf>,
    /// The score a hit needs to be shown to a customer; below it the bot stays silent.
    pub min_score: f32,
    /// Largest article file read, bytes.
    pub max_file_bytes: u64,
    /// Most files in the folder.
    pub max_articles: usize,
    /// Seconds between checks of the folder for changes (mtime poll); 0: never reload.
    pub reload_secs: u64,
}

impl Default for KbConfig {
    fn default() -> Self {
        let limits = Limits::default();
        KbConfig {
            enabled: false,
            path: None,
            min_score: switchboard_kb::DEFAULT_MIN_SCORE,
            max_file_bytes: limits.max_file_bytes,
            max_articles: limits.max_articles,
            reload_secs: 10,
        }
    }
}

impl KbConfig {
    /// The read limits.
    pub fn limits(&self) -> Limits {
        Limits { max_file_bytes: self.max_file_bytes, max_articles: self.max_articles }
    }

    /// Checks the section: a key relative to `kb` and the reason. The folder's articles are
    /// checked by `switchboard kb check`, not here: a config check should not parse them all.
    pub fn validate(&self) -> Result<(), (String, String)> {
        if !self.min_score.is_finite() || self.min_score < 0.0 {
            return Err(("min_score".into(), "must be a number of 0 or more".into()));
        }
        if self.max_file_bytes == 0 || self.max_articles == 0 {
            let key = if self.max_file_bytes == 0 { "max_file_bytes" } else { "max_articles" };
            return Err((key.into(), "must be greater than 0".into()));
        }
        match &self.path {
            None if self.enabled => Err(("path".into(), "must name the knowledge base folder when enabled".into())),
            Some(path) if self.enabled && !path.is_dir() => {
                Err(("path".into(), format!("{} is not a folder", path.display())))
            }
            _ => Ok(()),
        }
    }

    /// The folder, or the reason there is none.
    fn folder(&self) -> Result<&PathBuf, String> {
        self.path.as_ref().ok_or_else(|| "no `[kb] path` in the configuration".to_string())
    }
}

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
