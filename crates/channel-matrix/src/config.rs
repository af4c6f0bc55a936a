//! The `[channels.matrix]` configuration.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use switchboard_adapter::read_secret;

/// Settings of the Matrix agent endpoint: one bot account on one homeserver.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MatrixConfig {
    /// Whether the endpoint runs at all.
    pub enabled: bool,
    /// The homeserver's client-server API base URL, e.g. `https://matrix.example.org`.
    pub homeserver: String,
    /// The bot's own user id, e.g. `@switchboard:example.org` (its access token must be this user's).
    pub user_id: String,
    /// Environment variable holding the bot's access token.
    pub access_token_env: Option<String>,
    /// File holding the bot's access token.
    pub access_token_file: Option<PathBuf>,
    /// Agents who work from Matrix (endpoint kind `matrix`): agent id → Matrix user id.
    pub agents: BTreeMap<String, String>,
    /// Team rooms showing a team's live queue: team → room id (`!opaque:server`, or `!opaque`
    /// from room version 12 on). The bot
    /// joins them (invite it first in a private room).
    pub team_rooms: BTreeMap<String, String>,
    /// Largest file passed on either way, in bytes.
    pub max_file_bytes: u64,
    /// How long one `/sync` long poll waits for events, in seconds.
    pub sync_timeout_secs: u64,
}

impl Default for MatrixConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            homeserver: String::new(),
            user_id: String::new(),
            access_token_env: None,
            access_token_file: None,
            agents: BTreeMap::new(),
            team_rooms: BTreeMap::new(),
            max_file_bytes: 10 * 1024 * 1024,
            sync_timeout_secs: 30,
        }
    }
}

/// An invalid Matrix setting, naming the key (relative to `channels.matrix`) and the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {reason}")]
pub struct MatrixConfigError {
    /// Dotted key under `channels.matrix`.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

fn err(key: impl Into<String>, reason: impl Into<String>) -> MatrixConfigError {
    MatrixConfigError { key: key.into(), reason: reason.into() }
}

/// Whether `id` is `<sigil><localpart or opaque id>:<server name>`, as Matrix user and room ids are.
fn well_formed(id: &str, sigil: char) -> bool {
    let Some(rest) = id.strip_prefix(sigil) else { return false };
    // Room ids of room version 12 are opaque, without a server name.
    if sigil == '!' && !rest.contains(':') {
        return !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_graphic()) && id.len() <= 255;
    }
    let Some((local, server)) = rest.split_once(':') else { return false };
    let local_ok = match sigil {
        // The spec's user id grammar: lower-case letters, digits and `._=-/+`.
        '@' => local.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._=-/+".contains(&b)),
        _ => local.bytes().all(|b| b.is_ascii_graphic()),
    };
    let server_ok = !server.is_empty()
        && server.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        && server.chars().next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '[');
    !local.is_empty() && local_ok && server_ok && id.len() <= 255
}

impl MatrixConfig {
    /// Checks what can be checked without connecting; the error names the key.
    pub fn validate(&self) -> Result<(), MatrixConfigError> {
        if !self.enabled {
            return Ok(());
        }
        let url = reqwest::Url::parse(&self.homeserver).map_err(|e| err("homeserver", e.to_string()))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(err("homeserver", format!("`{}` is not an http(s) URL", self.homeserver)));
        }
        if !well_formed(&self.user_id, '@') {
            return Err(err("user_id", format!("`{}` is not a Matrix user id (`@name:server`)", self.user_id)));
        }
        if self.access_token_env.is_some() == self.access_token_file.is_some() {
            return Err(err("access_token_env", "name exactly one of `access_token_env` and `access_token_file`"));
        }
        let mut seen = BTreeMap::new();
        for (agent, user) in &self.agents {
            if !well_formed(user, '@') {
                return Err(err(
                    format!("agents.{agent}"),
                    format!("`{user}` is not a Matrix user id (`@name:server`)"),
                ));
            }
            if user == &self.user_id {
                return Err(err(format!("agents.{agent}"), "is the bot's own user id"));
            }
            if let Some(other) = seen.insert(user.as_str(), agent.as_str()) {
                return Err(err(format!("agents.{agent}"), format!("`{user}` is agent {other}'s user id too")));
            }
        }
        for (team, room) in &self.team_rooms {
            if !well_formed(room, '!') {
                return Err(err(
                    format!("team_rooms.{team}"),
                    format!("`{room}` is not a room id (`!opaque:server` or `!opaque`)"),
                ));
            }
        }
        if self.max_file_bytes == 0 {
            return Err(err("max_file_bytes", "must be greater than 0"));
        }
        if !(1..=300).contains(&self.sync_timeout_secs) {
            return Err(err("sync_timeout_secs", "1 to 300"));
        }
        Ok(())
    }

    /// Reads the bot's access token from the variable or file named.
    pub fn access_token(&self) -> Result<String, MatrixConfigError> {
        let key = if self.access_token_file.is_some() { "access_token_file" } else { "access_token_env" };
        let read = read_secret(self.access_token_env.as_deref(), self.access_token_file.as_deref())
            .map_err(|reason| err(key, reason))?;
        let token = read.ok_or_else(|| err("access_token_env", "name `access_token_env` or `access_token_file`"))?;
        if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(err(key, "is not an access token (printable ASCII, no spaces)"));
        }
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enabled() -> MatrixConfig {
        MatrixConfig {
            enabled: true,
            homeserver: "https://matrix.example.org".into(),
            user_id: "@switchboard:example.org".into(),
            access_token_env: Some("SB_MATRIX_TOKEN".into()),
            ..MatrixConfig::default()
        }
    }

    #[test]
    fn ids_must_be_well_formed() {
        assert!(well_formed("@alice:example.org", '@'));
        assert!(well_formed("@a.b_c=d-1:localhost:8448", '@'));
        assert!(!well_formed("@Alice:example.org", '@'));
        assert!(!well_formed("alice:example.org", '@'));
        assert!(!well_formed("@alice", '@'));
        assert!(!well_formed("@:example.org", '@'));
        assert!(well_formed("!AbCdEf123:example.org", '!'));
        assert!(well_formed("!yj8gdUKZdfGk7EVcgpGC8z-44cTyN_5p1lds-yMYRFc", '!'), "room version 12");
        assert!(!well_formed("#billing:example.org", '!'));
        assert!(!well_formed("!", '!'));
    }

    #[test]
    fn a_bad_setting_is_named() {
        assert_eq!(enabled().validate(), Ok(()));
        let mut c = enabled();
        c.agents.insert("alice".into(), "alice@example.org".into());
        assert_eq!(c.validate().unwrap_err().key, "agents.alice");
        let mut c = enabled();
        c.agents.insert("alice".into(), "@same:example.org".into());
        c.agents.insert("bob".into(), "@same:example.org".into());
        assert!(c.validate().unwrap_err().reason.contains("agent alice"));
        let mut c = enabled();
        c.team_rooms.insert("billing".into(), "#billing:example.org".into());
        assert_eq!(c.validate().unwrap_err().key, "team_rooms.billing");
        let mut c = enabled();
        c.homeserver = "matrix.example.org".into();
        assert_eq!(c.validate().unwrap_err().key, "homeserver");
        let mut c = enabled();
        c.access_token_file = Some("/run/secrets/matrix".into());
        assert_eq!(c.validate().unwrap_err().key, "access_token_env");
        let mut c = enabled();
        c.user_id = "switchboard".into();
        assert_eq!(c.validate().unwrap_err().key, "user_id");
    }
}
