//! The `[kb]` section of the daemon's configuration (`docs/kb.md`).

use std::path::PathBuf;

use serde::Deserialize;
use switchboard_kb::Limits;

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
    pub(crate) fn folder(&self) -> Result<&PathBuf, String> {
        self.path.as_ref().ok_or_else(|| "no `[kb] path` in the configuration".to_string())
    }
}
