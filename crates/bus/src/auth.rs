//! Authenticating to NATS: the `[nats]` credential and TLS keys, checked when the configuration
//! is loaded and applied to every connection attempt.
//!
//! Secrets never sit in the configuration itself: keys name an environment variable (`*_env`) or
//! a file (`*_file`) and are read here. A combination that cannot work is refused with the key and
//! the reason, so that a mistake is a load-time error rather than a reconnect loop.

use std::path::{Path, PathBuf};

use async_nats::ConnectOptions;

use crate::{BusConfig, server_list};

/// A `[nats]` setting that cannot work: which key (below `nats.`) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("nats.{key}: {reason}")]
pub struct BusConfigError {
    /// The key below `nats.`, e.g. `password_env`.
    pub key: String,
    /// Why it is refused.
    pub reason: String,
}

fn refuse(key: &str, reason: impl Into<String>) -> BusConfigError {
    BusConfigError { key: key.into(), reason: reason.into() }
}

/// The credentials this client presents, read from their sources. Never printed: no `Debug`.
pub(crate) enum Credentials {
    /// None configured: the server must allow anonymous clients.
    None,
    /// `nats://user:password@host` in `nats.url`.
    UrlUserPassword(String, String),
    /// `nats://token@host` in `nats.url`.
    UrlToken(String),
    /// `user` with `password_env` or `password_file`.
    UserPassword(String, String),
    /// `token_env` or `token_file`.
    Token(String),
    /// `nkey_seed_file`: the seed signs the server's nonce.
    NKey(String),
    /// `credentials_file`: the contents (a user JWT and its seed).
    Creds(String),
}

impl Credentials {
    /// The keys an operator should look at when the server refuses these credentials.
    pub(crate) fn keys(&self) -> &'static str {
        match self {
            Credentials::None => {
                "no credentials are configured; set nats.user with nats.password_env or password_file, \
                 nats.token_env or token_file, nats.nkey_seed_file or nats.credentials_file"
            }
            Credentials::UrlUserPassword(..) => "check the user and password in nats.url",
            Credentials::UrlToken(_) => "check the token in nats.url",
            Credentials::UserPassword(..) => "check nats.user and the password nats.password_env/password_file holds",
            Credentials::Token(_) => "check the token nats.token_env/token_file holds",
            Credentials::NKey(_) => "check that the server lists the public key of nats.nkey_seed_file",
            Credentials::Creds(_) => {
                "check nats.credentials_file: its user must be signed by an account the server trusts"
            }
        }
    }

    /// The connection options with these credentials.
    pub(crate) fn apply(&self, options: ConnectOptions) -> Result<ConnectOptions, BusConfigError> {
        Ok(match self {
            Credentials::None => options,
            Credentials::UrlUserPassword(user, pass) | Credentials::UserPassword(user, pass) => {
                options.user_and_password(user.clone(), pass.clone())
            }
            Credentials::UrlToken(token) | Credentials::Token(token) => options.token(token.clone()),
            Credentials::NKey(seed) => options.nkey(seed.clone()),
            Credentials::Creds(contents) => options
                .credentials(contents)
                .map_err(|e| refuse("credentials_file", format!("not a credentials file: {e}")))?,
        })
    }
}

/// TLS settings read from their files: the CA to trust and the client certificate, if any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Tls {
    /// Whether the connection must be encrypted whatever the server announces.
    pub(crate) required: bool,
    /// The CA certificate(s) the server's certificate must chain to (else the system's roots).
    pub(crate) ca_file: Option<PathBuf>,
    /// The client certificate and its key, for servers that verify clients.
    pub(crate) client: Option<(PathBuf, PathBuf)>,
}

impl Tls {
    /// The connection options with these TLS settings.
    pub(crate) fn apply(&self, mut options: ConnectOptions) -> ConnectOptions {
        if let Some(ca) = &self.ca_file {
            options = options.add_root_certificates(ca.clone());
        }
        if let Some((cert, key)) = &self.client {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        options.require_tls(self.required)
    }
}

impl BusConfig {
    /// Checks the URL, the credential keys and the TLS keys, reading every named environment
    /// variable and file: a setting that cannot work is refused here, naming the key.
    pub fn validate(&self) -> Result<(), BusConfigError> {
        self.credentials()?;
        self.tls()?;
        Ok(())
    }

    /// The credentials to present, read from their sources; refuses two ways at once.
    pub(crate) fn credentials(&self) -> Result<Credentials, BusConfigError> {
        let servers = server_list(&self.url).map_err(|e| refuse("url", format!("not a server URL: {e}")))?;
        let from_url = servers.iter().find(|s| s.username().is_some()).map(|server| {
            let user = percent_decoded(server.username().unwrap_or_default());
            match server.password() {
                Some(pass) => Credentials::UrlUserPassword(user, percent_decoded(pass)),
                None => Credentials::UrlToken(user),
            }
        });
        // Which ways are configured, by the key that names each: one at most.
        let password_set = self.password_env.is_some() || self.password_file.is_some();
        let token_set = self.token_env.is_some() || self.token_file.is_some();
        let ways = [
            ("url", from_url.is_some()),
            ("user", self.user.is_some() || password_set),
            (if self.token_env.is_some() { "token_env" } else { "token_file" }, token_set),
            ("nkey_seed_file", self.nkey_seed_file.is_some()),
            ("credentials_file", self.credentials_file.is_some()),
        ];
        let mut set = ways.iter().filter(|(_, on)| *on).map(|(key, _)| *key);
        if let (Some(first), Some(second)) = (set.next(), set.next()) {
            let first = if first == "url" { "credentials in `url`".to_string() } else { format!("`{first}`") };
            return Err(refuse(second, format!("{first} and `{second}` are two ways to authenticate; set only one")));
        }

        if let Some(credentials) = from_url {
            return Ok(credentials);
        }
        if self.user.is_some() || password_set {
            let user = match self.user.as_deref().map(str::trim) {
                Some("") => return Err(refuse("user", "must not be empty")),
                Some(user) => user.to_string(),
                None => {
                    let key = if self.password_env.is_some() { "password_env" } else { "password_file" };
                    return Err(refuse(key, "a password needs `user`"));
                }
            };
            let password = secret(("password_env", &self.password_env), ("password_file", &self.password_file))?
                .ok_or_else(|| refuse("user", "needs a password: set `password_env` or `password_file`"))?;
            return Ok(Credentials::UserPassword(user, password));
        }
        if let Some(token) = secret(("token_env", &self.token_env), ("token_file", &self.token_file))? {
            return Ok(Credentials::Token(token));
        }
        if let Some(path) = &self.nkey_seed_file {
            let seed = read_secret_file("nkey_seed_file", path)?;
            if let Err(e) = nkeys::KeyPair::from_seed(&seed) {
                return Err(refuse("nkey_seed_file", format!("`{}` does not hold an NKey seed: {e}", path.display())));
            }
            if !seed.starts_with("SU") {
                return Err(refuse(
                    "nkey_seed_file",
                    format!("`{}` holds an NKey seed of another kind; a user's seed starts with `SU`", path.display()),
                ));
            }
            return Ok(Credentials::NKey(seed));
        }
        if let Some(path) = &self.credentials_file {
            let contents = read_file("credentials_file", path)?;
            // Parses the JWT and the seed as the client will.
            if let Err(e) = ConnectOptions::new().credentials(&contents) {
                return Err(refuse("credentials_file", format!("`{}` is not a credentials file: {e}", path.display())));
            }
            return Ok(Credentials::Creds(contents));
        }
        Ok(Credentials::None)
    }

    /// The TLS settings, their files checked; any of them makes TLS required, so that a CA or a
    /// client certificate is never silently unused on a plain connection.
    pub(crate) fn tls(&self) -> Result<Tls, BusConfigError> {
        let pem = |key: &str, path: &Path, marker: &str, what: &str| -> Result<PathBuf, BusConfigError> {
            let contents = read_file(key, path)?;
            if !contents.contains(marker) {
                return Err(refuse(key, format!("`{}` does not hold {what} in PEM form", path.display())));
            }
            Ok(path.to_path_buf())
        };
        let ca_file = match &self.tls_ca_file {
            Some(path) => Some(pem("tls_ca_file", path, "-----BEGIN CERTIFICATE-----", "a CA certificate")?),
            None => None,
        };
        let client = match (&self.tls_cert_file, &self.tls_key_file) {
            (None, None) => None,
            (Some(_), None) => {
                return Err(refuse("tls_key_file", "`tls_cert_file` needs `tls_key_file`, the certificate's key"));
            }
            (None, Some(_)) => {
                return Err(refuse("tls_cert_file", "`tls_key_file` needs `tls_cert_file`, the client certificate"));
            }
            (Some(cert), Some(key)) => Some((
                pem("tls_cert_file", cert, "-----BEGIN CERTIFICATE-----", "a certificate")?,
                pem("tls_key_file", key, "PRIVATE KEY-----", "a private key")?,
            )),
        };
        let required = self.tls_required || ca_file.is_some() || client.is_some();
        Ok(Tls { required, ca_file, client })
    }
}

/// The secret of an `*_env`/`*_file` pair, if either is set; refuses both, an unset or empty
/// variable and an unreadable or empty file.
fn secret(env: (&str, &Option<String>), file: (&str, &Option<PathBuf>)) -> Result<Option<String>, BusConfigError> {
    match (env.1, file.1) {
        (Some(_), Some(_)) => Err(refuse(file.0, format!("set only one of `{}` and `{}`", env.0, file.0))),
        (Some(var), None) => {
            if var.trim().is_empty() {
                return Err(refuse(env.0, "must name an environment variable"));
            }
            match std::env::var(var) {
                Ok(value) if value.trim().is_empty() => {
                    Err(refuse(env.0, format!("environment variable `{var}` is empty")))
                }
                Ok(value) => Ok(Some(value)),
                Err(std::env::VarError::NotPresent) => {
                    Err(refuse(env.0, format!("environment variable `{var}` is not set")))
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    Err(refuse(env.0, format!("environment variable `{var}` is not valid UTF-8")))
                }
            }
        }
        (None, Some(path)) => read_secret_file(file.0, path).map(Some),
        (None, None) => Ok(None),
    }
}

/// A file's contents; refuses an unreadable or empty file.
fn read_file(key: &str, path: &Path) -> Result<String, BusConfigError> {
    let contents =
        std::fs::read_to_string(path).map_err(|e| refuse(key, format!("cannot read `{}`: {e}", path.display())))?;
    if contents.trim().is_empty() {
        return Err(refuse(key, format!("`{}` is empty", path.display())));
    }
    Ok(contents)
}

/// A secret file's contents without the trailing line break editors and `echo` add.
fn read_secret_file(key: &str, path: &Path) -> Result<String, BusConfigError> {
    Ok(read_file(key, path)?.trim_end_matches(['\r', '\n']).to_string())
}

/// A URL's user or password as written (`%40` for `@` and the like decoded).
fn percent_decoded(part: &str) -> String {
    percent_encoding::percent_decode_str(part).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(toml_like: impl FnOnce(&mut BusConfig)) -> BusConfig {
        let mut config = BusConfig::default();
        toml_like(&mut config);
        config
    }

    fn refused(config: &BusConfig) -> (String, String) {
        let e = config.validate().expect_err("refused");
        (e.key, e.reason)
    }

    #[test]
    fn two_ways_to_authenticate_are_refused_naming_the_second() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "s3cret\n").unwrap();
        let both = config(|c| {
            c.user = Some("sb".into());
            c.password_file = Some(file.clone());
            c.token_file = Some(file.clone());
        });
        let (key, reason) = refused(&both);
        assert_eq!(key, "token_file");
        assert!(reason.contains("`user` and `token_file` are two ways"), "{reason}");
        let url_and_user = config(|c| {
            c.url = "nats://a:b@127.0.0.1:4222".into();
            c.user = Some("sb".into());
        });
        let (key, reason) = refused(&url_and_user);
        assert_eq!(key, "user");
        assert!(reason.starts_with("credentials in `url` and `user`"), "{reason}");
    }

    #[test]
    fn incomplete_pairs_and_missing_sources_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("absent");
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let cases: Vec<(BusConfig, &str, &str)> = vec![
            (config(|c| c.user = Some("sb".into())), "user", "needs a password"),
            (config(|c| c.password_env = Some("X".into())), "password_env", "needs `user`"),
            (
                config(|c| {
                    c.user = Some("sb".into());
                    c.password_env = Some("SB_TEST_SURELY_UNSET_VARIABLE".into());
                }),
                "password_env",
                "`SB_TEST_SURELY_UNSET_VARIABLE` is not set",
            ),
            (
                config(|c| {
                    c.token_env = Some("X".into());
                    c.token_file = Some(empty.clone());
                }),
                "token_file",
                "set only one of `token_env` and `token_file`",
            ),
            (config(|c| c.token_file = Some(empty.clone())), "token_file", "is empty"),
            (config(|c| c.nkey_seed_file = Some(missing.clone())), "nkey_seed_file", "cannot read"),
            (config(|c| c.credentials_file = Some(empty.clone())), "credentials_file", "is empty"),
            (config(|c| c.tls_cert_file = Some(empty.clone())), "tls_key_file", "needs `tls_key_file`"),
            (config(|c| c.tls_key_file = Some(empty.clone())), "tls_cert_file", "needs `tls_cert_file`"),
            (config(|c| c.tls_ca_file = Some(missing.clone())), "tls_ca_file", "cannot read"),
            (config(|c| c.url = "nats://127.0.0.1:notaport".into()), "url", "not a server URL"),
        ];
        for (config, key, reason) in cases {
            let (k, r) = refused(&config);
            assert_eq!(k, key, "{r}");
            assert!(r.contains(reason), "{key}: {r}");
        }
    }

    #[test]
    fn seeds_and_pem_files_are_checked_for_what_they_hold() {
        let dir = tempfile::tempdir().unwrap();
        let not_a_seed = dir.path().join("seed");
        std::fs::write(&not_a_seed, "SUnotaseed\n").unwrap();
        let (key, reason) = refused(&config(|c| c.nkey_seed_file = Some(not_a_seed.clone())));
        assert_eq!(key, "nkey_seed_file");
        assert!(reason.contains("does not hold an NKey seed"), "{reason}");
        let account_seed = dir.path().join("account-seed");
        std::fs::write(&account_seed, nkeys::KeyPair::new_account().seed().unwrap()).unwrap();
        let (_, reason) = refused(&config(|c| c.nkey_seed_file = Some(account_seed)));
        assert!(reason.contains("starts with `SU`"), "{reason}");
        let user_seed = dir.path().join("user-seed");
        std::fs::write(&user_seed, nkeys::KeyPair::new_user().seed().unwrap()).unwrap();
        config(|c| c.nkey_seed_file = Some(user_seed)).validate().expect("a user seed is accepted");

        let (key, reason) = refused(&config(|c| c.credentials_file = Some(not_a_seed.clone())));
        assert_eq!(key, "credentials_file");
        assert!(reason.contains("is not a credentials file"), "{reason}");
        let (key, reason) = refused(&config(|c| c.tls_ca_file = Some(not_a_seed.clone())));
        assert_eq!(key, "tls_ca_file");
        assert!(reason.contains("does not hold a CA certificate in PEM form"), "{reason}");
    }

    #[test]
    fn a_tls_file_makes_tls_required() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").unwrap();
        assert!(!BusConfig::default().tls().unwrap().required);
        assert!(config(|c| c.tls_required = true).tls().unwrap().required);
        let with_ca = config(|c| c.tls_ca_file = Some(ca.clone())).tls().unwrap();
        assert_eq!((with_ca.required, with_ca.ca_file), (true, Some(ca)));
    }
}
