//! Connecting to an IMAP server: TLS from the first byte, STARTTLS, or plain on loopback, then
//! login. The session's stream is one type whatever the security, so the rest does not care.

use std::sync::Arc;

use async_imap::{Client, Session};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_util::either::Either;

use crate::config::{MailboxConfig, Security, read_secret};
use crate::error::EmailError;

/// A connection to the IMAP server, plain or TLS.
pub type ImapStream = Either<TcpStream, TlsStream<TcpStream>>;

/// A logged-in IMAP session.
pub type ImapSession = Session<ImapStream>;

/// What connecting needs, resolved once: the password and the TLS trust.
#[derive(Clone)]
pub struct Connector {
    name: String,
    cfg: MailboxConfig,
    password: String,
    tls: TlsConnector,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.debug_struct("Connector").field("mailbox", &self.name).field("host", &self.cfg.host).finish()
    }
}

/// TLS trust: the configured CA file only, else the platform's roots (webpki-roots bundle).
pub fn tls_connector(ca_file: Option<&std::path::Path>, key: &str) -> Result<TlsConnector, EmailError> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| EmailError::config(key, format!("cannot read `{}`: {e}", path.display())))?;
            let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut pem.as_slice())
                .collect::<Result<_, _>>()
                .map_err(|e| EmailError::config(key, format!("not a PEM certificate: {e}")))?;
            if certs.is_empty() {
                return Err(EmailError::config(key, "no certificate in the file"));
            }
            for cert in certs {
                roots.add(cert).map_err(|e| EmailError::config(key, format!("unusable certificate: {e}")))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let config = ClientConfig::builder_with_provider(Arc::new(tokio_rustls::rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| EmailError::config(key, format!("TLS setup failed: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

impl Connector {
    /// Reads the password and CA file now, so a bad setting fails at start, not at connect.
    pub fn new(name: &str, cfg: &MailboxConfig) -> Result<Connector, EmailError> {
        let key = |k: &str| format!("mailboxes.{name}.{k}");
        let password = read_secret(&cfg.password_env, &cfg.password_file, &key("password_env"))?;
        let tls = tls_connector(cfg.ca_file.as_deref(), &key("ca_file"))?;
        Ok(Connector { name: name.into(), cfg: cfg.clone(), password, tls })
    }

    /// The mailbox's configured name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The mailbox's settings.
    pub fn config(&self) -> &MailboxConfig {
        &self.cfg
    }

    fn err(&self, reason: impl std::fmt::Display) -> EmailError {
        EmailError::imap(&self.name, reason)
    }

    async fn tls(&self, tcp: TcpStream) -> Result<TlsStream<TcpStream>, EmailError> {
        let server = ServerName::try_from(self.cfg.host.clone()).map_err(|e| self.err(format!("host name: {e}")))?;
        self.tls.connect(server, tcp).await.map_err(|e| self.err(format!("TLS handshake: {e}")))
    }

    /// Connects, secures and logs in.
    pub async fn connect(&self) -> Result<ImapSession, EmailError> {
        let addr = (self.cfg.host.as_str(), self.cfg.port);
        let tcp = TcpStream::connect(addr).await.map_err(|e| self.err(format!("connect: {e}")))?;
        let stream: ImapStream = match self.cfg.security {
            Security::Tls => Either::Right(self.tls(tcp).await?),
            Security::None => Either::Left(tcp),
            Security::Starttls => {
                let mut client = Client::new(tcp);
                client.read_response().await.map_err(|e| self.err(format!("greeting: {e}")))?;
                client
                    .run_command_and_check_ok("STARTTLS", None)
                    .await
                    .map_err(|e| self.err(format!("STARTTLS: {e}")))?;
                Either::Right(self.tls(client.into_inner()).await?)
            }
        };
        let mut client = Client::new(stream);
        if self.cfg.security != Security::Starttls {
            client.read_response().await.map_err(|e| self.err(format!("greeting: {e}")))?;
        }
        client.login(&self.cfg.username, &self.password).await.map_err(|(e, _)| self.err(format!("login: {e}")))
    }
}
