//! The SMTP side: one relay connection pool (lettre), TLS as configured, and what a failure means.

use std::time::Duration;

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use switchboard_adapter::SendError;

use crate::config::{Security, SmtpConfig, read_secret};
use crate::error::EmailError;

/// Sends mail through the configured relay.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl Mailer {
    /// Builds the transport (no connection yet); reads the password and CA file now.
    pub fn new(cfg: &SmtpConfig) -> Result<Mailer, EmailError> {
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(cfg.host.clone())
            .port(cfg.port)
            .timeout(Some(Duration::from_millis(cfg.timeout_ms)));
        let tls = || -> Result<TlsParameters, EmailError> {
            let mut params = TlsParameters::builder(cfg.host.clone());
            if let Some(path) = &cfg.ca_file {
                let pem = std::fs::read(path).map_err(|e| {
                    EmailError::config("smtp.ca_file", format!("cannot read `{}`: {e}", path.display()))
                })?;
                let cert = Certificate::from_pem(&pem)
                    .map_err(|e| EmailError::config("smtp.ca_file", format!("not a PEM certificate: {e}")))?;
                params = params.add_root_certificate(cert);
            }
            params.build_rustls().map_err(|e| EmailError::config("smtp", format!("TLS setup failed: {e}")))
        };
        builder = match cfg.security {
            Security::Tls => builder.tls(Tls::Wrapper(tls()?)),
            Security::Starttls => builder.tls(Tls::Required(tls()?)),
            Security::None => builder.tls(Tls::None),
        };
        if !cfg.username.is_empty() {
            let password = read_secret(&cfg.password_env, &cfg.password_file, "smtp.password_env")?;
            builder = builder.credentials(Credentials::new(cfg.username.clone(), password));
        }
        Ok(Mailer { transport: builder.build() })
    }

    /// Hands one message to the relay; returns once the relay accepted it. A 5xx answer is
    /// permanent, everything else (4xx, timeouts, connection trouble) is worth retrying.
    pub async fn send(&self, message: Message) -> Result<(), SendError> {
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(SendError::permanent(format!("SMTP refused the message: {e}"))),
            Err(e) => Err(SendError::retryable(format!("SMTP: {e}"))),
        }
    }
}
