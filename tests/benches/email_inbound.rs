//! Email inbound: how fast a mailbox of 5,000 messages becomes acknowledged envelopes, and how long
//! a message takes from the SMTP server's acceptance to its envelope on the bus while the channel
//! waits in IMAP IDLE. Real dovecot and OpenSMTPD (the test harness's), real NATS.
//!
//! Baseline in the same run: raw JetStream publishes of messages of the same size, one at a time
//! awaiting each ack (the channel stores a mailbox's messages in order, one at a time, so this is
//! its ceiling), and with acks pipelined. Tunables: `BENCH_MAILBOX` (5000), `BENCH_IDLE_SAMPLES`
//! (50). Writes `target/bench-results/email_inbound.json`.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use async_nats::jetstream;
use bytes::Bytes;
use common::*;
use futures::StreamExt;
use hdrhistogram::Histogram;
use switchboard_adapter::{ChannelRuntime, RuntimeConfig};
use switchboard_bus::{Bus, BusConfig, BusSlot};
use switchboard_channel_email::{EmailChannel, EmailConfig, MailboxConfig, Security};
use switchboard_testkit::{MailServer, NatsServer};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;

fn var(name: &str, default: usize) -> anyhow::Result<usize> {
    std::env::var(name).map_or(Ok(default), |v| v.parse().with_context(|| format!("{name}={v}")))
}

fn message(i: usize) -> Vec<u8> {
    format!(
        "From: Customer {i} <c{i}@customer.test>\r\nTo: support@example.test\r\nSubject: Order {i}\r\nMessage-ID: <m{i}@customer.test>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello, where is my order {i}? It was due last week and the tracking page says nothing.\r\n\r\nThanks,\r\nCustomer {i}\r\n"
    )
    .into_bytes()
}

/// Sends one message over SMTP; returns when the server accepted it (250 after the data).
async fn smtp_send(port: u16, raw: &[u8]) -> anyhow::Result<Instant> {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    async fn expect(
        lines: &mut tokio::io::Lines<BufReader<tokio::net::tcp::OwnedReadHalf>>,
        code: &str,
    ) -> anyhow::Result<()> {
        loop {
            let line = lines.next_line().await?.context("SMTP server closed")?;
            ensure!(line.starts_with(code), "SMTP: expected {code}, got {line}");
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(());
            }
        }
    }
    expect(&mut lines, "220").await?;
    for (cmd, code) in [
        ("EHLO bench.test\r\n", "250"),
        ("MAIL FROM:<bench@customer.test>\r\n", "250"),
        ("RCPT TO:<support@example.test>\r\n", "250"),
        ("DATA\r\n", "354"),
    ] {
        write.write_all(cmd.as_bytes()).await?;
        expect(&mut lines, code).await?;
    }
    write.write_all(raw).await?;
    write.write_all(b".\r\n").await?;
    expect(&mut lines, "250").await?;
    let accepted = Instant::now();
    write.write_all(b"QUIT\r\n").await?;
    Ok(accepted)
}

/// Messages dovecot has stored for `support` (maildir `new` and `cur`).
fn stored_in(mail: &MailServer) -> usize {
    let dir = mail.maildir("support");
    ["new", "cur"].iter().map(|d| std::fs::read_dir(dir.join(d)).map_or(0, |r| r.count())).sum()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n = var("BENCH_MAILBOX", 5000)?;
    let samples = var("BENCH_IDLE_SAMPLES", 50)?;
    let nats = NatsServer::start();
    let mail = MailServer::start();
    let size = message(0).len();

    // 1. Baselines: raw JetStream publishes of envelope-sized messages on the same server.
    let client = async_nats::connect(nats.url()).await?;
    let js = jetstream::new(client.clone());
    bench_stream(&js).await?;
    let payload = Bytes::from(vec![b'x'; 900]);
    let start = Instant::now();
    for _ in 0..n {
        js.publish("bench.sync", payload.clone()).await?.await?;
    }
    let sync_rate = n as f64 / start.elapsed().as_secs_f64();
    let async_rate = n as f64 / publish_async(&js, "bench.async", n).await?.as_secs_f64();
    js.delete_stream("BENCH").await?;

    // 2. A mailbox of n messages, delivered through dovecot (LMTP) before the channel starts.
    let fill = Instant::now();
    let support = mail.address("support");
    for i in 0..n {
        mail.deliver_raw(&support, &message(i));
    }
    println!("filled the mailbox with {n} messages of {size} bytes in {:.1} s", fill.elapsed().as_secs_f64());

    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("imap.pass"), mail.password("support"))?;
    std::fs::write(dir.path().join("token.key"), "bench-reply-token-signing-key")?;
    let mut cfg = EmailConfig {
        enabled: true,
        address: support.clone(),
        token_secret_file: Some(dir.path().join("token.key")),
        ..EmailConfig::default()
    };
    cfg.mailboxes.insert(
        "support".into(),
        MailboxConfig {
            host: mail.host().into(),
            port: mail.imap_port(),
            security: Security::None,
            username: "support".into(),
            password_file: Some(dir.path().join("imap.pass")),
            poll_secs: 300,
            ..MailboxConfig::default()
        },
    );
    cfg.smtp.host = mail.host().into();
    cfg.smtp.port = mail.smtp_port();
    cfg.smtp.security = Security::None;
    let stop = CancellationToken::new();
    let bus = Bus::connect(&BusConfig::for_url(nats.url()), &stop).await?;
    bus.ensure_contract().await?;
    let slot = BusSlot::ready(bus.clone());
    // Every message comes from its own sender here; no per-sender limit in the way.
    let mut runtime_cfg = RuntimeConfig::default();
    runtime_cfg.rate_limit.per_minute = 10_000_000;
    runtime_cfg.rate_limit.burst = 1_000_000;
    let channel = EmailChannel::new(&cfg, slot.clone()).map_err(|e| anyhow::anyhow!(e))?;
    let mut arrivals = client.subscribe("sb.in.email").await?;
    client.flush().await?;
    let start = Instant::now();
    let task = ChannelRuntime::new(Arc::new(channel), runtime_cfg, slot, stop.clone()).spawn();
    for got in 0..n {
        tokio::time::timeout(STALL, arrivals.next())
            .await
            .with_context(|| format!("no envelope for {STALL:?} after {got} of {n}"))?
            .context("subscription ended")?;
    }
    let drain = start.elapsed();
    let mailbox_rate = n as f64 / drain.as_secs_f64();

    // 3. SMTP accepted → envelope on the bus, with the channel idling (IDLE), one at a time.
    let mut idle = Histogram::<u64>::new(3)?;
    let mut mta = Histogram::<u64>::new(3)?;
    for i in 0..samples {
        // Let the watcher settle back into IDLE before the next message.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let before = stored_in(&mail);
        let accepted = smtp_send(mail.smtp_port(), &message(n + i)).await?;
        // When dovecot stored it: the part of the latency that is the mail servers'.
        while stored_in(&mail) == before {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        mta.record(accepted.elapsed().as_micros() as u64)?;
        tokio::time::timeout(STALL, arrivals.next()).await.context("no envelope after SMTP accepted")?;
        idle.record(accepted.elapsed().as_micros() as u64)?;
    }
    stop.cancel();
    task.await??;
    let stored = js.get_stream("SB_INBOUND").await?.info().await?.state.messages;
    ensure!(stored == (n + samples) as u64, "{stored} envelopes stored for {} messages", n + samples);

    let ms = |v: u64| v as f64 / 1000.0;
    let metrics = [
        Metric { name: "raw_sync_publish_rate", value: sync_rate, unit: "msgs/s", baseline: None },
        Metric { name: "raw_async_publish_rate", value: async_rate, unit: "msgs/s", baseline: None },
        Metric { name: "mailbox_to_envelopes_rate", value: mailbox_rate, unit: "msgs/s", baseline: Some(sync_rate) },
        Metric {
            name: "mailbox_vs_sync_publish",
            value: mailbox_rate / sync_rate,
            unit: "ratio",
            baseline: Some(sync_rate),
        },
        Metric { name: "mailbox_messages", value: n as f64, unit: "count", baseline: None },
        Metric {
            name: "smtp_to_envelope_idle_p50",
            value: ms(idle.value_at_quantile(0.5)),
            unit: "ms",
            baseline: None,
        },
        Metric {
            name: "smtp_to_envelope_idle_p90",
            value: ms(idle.value_at_quantile(0.9)),
            unit: "ms",
            baseline: None,
        },
        Metric { name: "smtp_to_envelope_idle_max", value: ms(idle.max()), unit: "ms", baseline: None },
        Metric { name: "smtp_to_mailbox_p50", value: ms(mta.value_at_quantile(0.5)), unit: "ms", baseline: None },
    ];
    print_table(&metrics);
    let path = write_json("email_inbound", &metrics)?;
    println!("\nwrote {}", path.display());
    Ok(())
}
