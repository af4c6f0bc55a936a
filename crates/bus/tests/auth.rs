//! Every way `[nats]` authenticates, each against a real nats-server configured for it with
//! JetStream: user and password (in the URL, or `user` with a password file), token, NKey,
//! `.creds` in operator mode, TLS with a CA, and mutual TLS with a client certificate. Each mode
//! connects and sets up the contract, then publishes and consumes; each wrong secret gives one
//! clear error at once instead of a reconnect loop.
//!
//! `password_env` and `token_env` read the process environment, which these tests cannot set
//! (`unsafe_code` is forbidden, and `std::env::set_var` is unsafe): the daemon-level test in
//! `crates/switchboard/tests/nats_auth.rs` covers them with the variable set on the daemon.

mod auth_support;

use std::time::{Duration, Instant};

use futures::StreamExt;
use switchboard_bus::async_nats::jetstream;
use switchboard_bus::{Bus, BusConfig, BusError};
use switchboard_core::contract::{streams, subjects};
use tokio_util::sync::CancellationToken;

use auth_support::certs::Ca;
use auth_support::jwt::{Operator, user_creds};
use auth_support::write;
use switchboard_testkit::ConfiguredNatsServer as AuthServer;

/// How long a refusal may take: one attempt, not a loop.
const REFUSED_WITHIN: Duration = Duration::from_secs(5);

/// Connects as the daemon does (retrying what is worth retrying), sets up the contract, then
/// publishes an envelope and reads it back through a consumer.
async fn assert_works(config: &BusConfig, server: &AuthServer) {
    config.validate().expect("the configuration passes validation");
    let connected = tokio::time::timeout(Duration::from_secs(20), Bus::connect(config, &CancellationToken::new()))
        .await
        .unwrap_or_else(|_| panic!("no connection in 20 s; server log:\n{}", server.log()));
    let bus = connected.unwrap_or_else(|e| panic!("{e}; server log:\n{}", server.log()));
    tokio::time::timeout(Duration::from_secs(60), bus.ensure_contract())
        .await
        .expect("contract set up in time")
        .expect("contract set up");
    let subject = subjects::inbound("authtest");
    let id = format!("auth-{}", uuid::Uuid::now_v7());
    bus.publish_raw(&subject, Default::default(), "hello".into(), &id).await.expect("the publish is acknowledged");
    let consumer = bus
        .jetstream()
        .get_stream(streams::INBOUND)
        .await
        .unwrap()
        .create_consumer(jetstream::consumer::pull::Config {
            filter_subject: subject,
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ..Default::default()
        })
        .await
        .expect("a consumer");
    let mut messages = consumer.fetch().max_messages(1).expires(Duration::from_secs(5)).messages().await.unwrap();
    let message = messages.next().await.expect("the message is delivered").expect("readable");
    assert_eq!(message.payload.as_ref(), b"hello");
    message.double_ack().await.expect("the ack is accepted");
}

/// Connects as the daemon does and expects one error, quickly; returns it.
async fn refusal(config: &BusConfig) -> BusError {
    let started = Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(20), Bus::connect(config, &CancellationToken::new()))
        .await
        .expect("a refusal ends the connection attempts instead of retrying");
    let Err(err) = outcome else { panic!("connected with a wrong secret") };
    assert!(started.elapsed() < REFUSED_WITHIN, "refused after {:?}: {err}", started.elapsed());
    err
}

/// Expects the server to refuse the credentials, with an error naming what to check and not
/// carrying `secret`.
async fn assert_refused(config: &BusConfig, hint: &str, secret: &str) {
    let err = refusal(config).await;
    let text = err.to_string();
    assert!(matches!(err, BusError::Refused { .. }), "{text}");
    assert!(text.contains("refused this client") && text.contains("authorization violation"), "{text}");
    assert!(text.contains(hint), "{text}");
    assert!(!text.contains(secret), "the error carries the secret: {text}");
}

fn password_server(password: &str) -> AuthServer {
    AuthServer::start(|_| format!("authorization {{ users = [ {{ user: sb, password: \"{password}\" }} ] }}"))
}

#[tokio::test]
async fn user_and_password_in_the_url() {
    let server = password_server("p@ss:word-1");
    assert_works(&BusConfig::for_url(server.url_with("sb:p%40ss%3Aword-1")), &server).await;
    assert_refused(&BusConfig::for_url(server.url_with("sb:not-it-1")), "nats.url", "not-it-1").await;
}

#[tokio::test]
async fn user_with_a_password_file() {
    let server = password_server("file-password-2");
    let config = |password: &str| BusConfig {
        user: Some("sb".into()),
        password_file: Some(write(server.dir(), "password", &format!("{password}\n"))),
        ..BusConfig::for_url(server.url())
    };
    assert_works(&config("file-password-2"), &server).await;
    assert_refused(&config("not-it-2"), "nats.user and the password", "not-it-2").await;
    // Without credentials the server refuses too, and the error says which keys to set.
    assert_refused(&BusConfig::for_url(server.url()), "no credentials are configured", "file-password-2").await;
}

#[tokio::test]
async fn token_file() {
    let server = AuthServer::start(|_| "authorization { token: \"token-3\" }".into());
    let config = |token: &str| BusConfig {
        token_file: Some(write(server.dir(), "token", &format!("{token}\n"))),
        ..BusConfig::for_url(server.url())
    };
    assert_works(&config("token-3"), &server).await;
    assert_refused(&config("not-it-3"), "nats.token_env/token_file", "not-it-3").await;
}

#[tokio::test]
async fn nkey_seed_file() {
    let user = nkeys::KeyPair::new_user();
    let public = user.public_key();
    let server = AuthServer::start(|_| format!("authorization {{ users = [ {{ nkey: {public} }} ] }}"));
    let config = |seed: &str| BusConfig {
        nkey_seed_file: Some(write(server.dir(), "user.nk", &format!("{seed}\n"))),
        ..BusConfig::for_url(server.url())
    };
    assert_works(&config(&user.seed().unwrap()), &server).await;
    let stranger = nkeys::KeyPair::new_user().seed().unwrap();
    assert_refused(&config(&stranger), "nats.nkey_seed_file", &stranger).await;
}

#[tokio::test]
async fn credentials_file_in_operator_mode() {
    let operator = Operator::new();
    let server = AuthServer::start(|_| operator.server_block());
    let config = |creds: &str| BusConfig {
        credentials_file: Some(write(server.dir(), "switchboard.creds", creds)),
        ..BusConfig::for_url(server.url())
    };
    assert_works(&config(&user_creds(&operator.account)), &server).await;
    // A user signed by an account the operator never signed.
    let untrusted = user_creds(&nkeys::KeyPair::new_account());
    let seed = untrusted.lines().find(|l| l.starts_with("SU")).unwrap().to_string();
    assert_refused(&config(&untrusted), "nats.credentials_file", &seed).await;
}

#[tokio::test]
async fn tls_with_a_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "good");
    let server = AuthServer::start(|d| {
        let cert = ca.server(d, "server");
        format!("tls {{ cert_file: \"{}\", key_file: \"{}\" }}", cert.cert_file.display(), cert.key_file.display())
    });
    let with_ca = |ca_file| BusConfig { tls_ca_file: Some(ca_file), ..BusConfig::for_url(server.url()) };
    assert_works(&with_ca(ca.ca_file.clone()), &server).await;
    // A `tls://` URL asks for TLS by itself.
    let tls_url = format!("tls://127.0.0.1:{}", server.port());
    assert_works(&BusConfig { tls_ca_file: Some(ca.ca_file.clone()), ..BusConfig::for_url(tls_url) }, &server).await;

    // A certificate from another CA is not trusted; neither is ours without the CA file.
    let other = Ca::new(dir.path(), "other");
    for config in [with_ca(other.ca_file.clone()), BusConfig::for_url(server.url())] {
        let err = refusal(&config).await;
        let text = err.to_string();
        assert!(matches!(err, BusError::Tls { .. }), "{text}");
        assert!(text.contains("UnknownIssuer") && text.contains("nats.tls_ca_file"), "{text}");
    }
}

#[tokio::test]
async fn a_ca_file_is_never_silently_unused_on_a_plain_server() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "unused");
    let plain = AuthServer::start(|_| String::new());
    let config = BusConfig { tls_ca_file: Some(ca.ca_file.clone()), ..BusConfig::for_url(plain.url()) };
    let err = refusal(&config).await;
    assert!(matches!(err, BusError::Tls { .. }), "{err}");
    assert!(err.to_string().contains("that the server has TLS enabled"), "{err}");
}

#[tokio::test]
async fn mutual_tls_with_a_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "mtls");
    let server = AuthServer::start(|d| {
        let cert = ca.server(d, "server");
        format!(
            "tls {{ cert_file: \"{}\", key_file: \"{}\", ca_file: \"{}\", verify: true }}",
            cert.cert_file.display(),
            cert.key_file.display(),
            ca.ca_file.display()
        )
    });
    let client = ca.client(dir.path(), "client", "switchboard");
    let config = |cert: Option<&auth_support::certs::Issued>| BusConfig {
        tls_ca_file: Some(ca.ca_file.clone()),
        tls_cert_file: cert.map(|c| c.cert_file.clone()),
        tls_key_file: cert.map(|c| c.key_file.clone()),
        ..BusConfig::for_url(server.url())
    };
    assert_works(&config(Some(&client)), &server).await;

    // Without a client certificate, or with one from another CA, the server closes the connection.
    let other = Ca::new(dir.path(), "stranger").client(dir.path(), "stranger", "switchboard");
    for (config, alert) in [(config(None), "CertificateRequired"), (config(Some(&other)), "UnknownCA")] {
        let err = refusal(&config).await;
        let text = err.to_string();
        assert!(matches!(err, BusError::Tls { .. }), "{text}");
        assert!(text.contains(alert) && text.contains("nats.tls_cert_file"), "{text}");
    }
}
