//! Leadership leases against a real NATS server: one holder at a time, takeover only after the
//! TTL when the holder dies, at once when it releases, and a deposed holder learns it lost.

use std::time::Duration;

use switchboard_bus::{Bus, BusConfig, Lease};
use switchboard_testkit::NatsServer;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const TTL: Duration = Duration::from_millis(1500);

async fn connect(server: &NatsServer) -> Bus {
    let bus = Bus::connect(&BusConfig::for_url(server.url()), &CancellationToken::new()).await.unwrap();
    bus.ensure_contract().await.unwrap();
    bus
}

async fn acquire(bus: &Bus, holder: &str) -> Lease {
    bus.acquire_lease("router.default", holder, TTL, &CancellationToken::new()).await.unwrap().expect("not cancelled")
}

/// Starts contender `holder` in the background; the handle yields its lease and when it got it.
fn contend(bus: &Bus, holder: &'static str) -> tokio::task::JoinHandle<(Lease, Instant)> {
    let bus = bus.clone();
    tokio::spawn(async move {
        let lease = acquire(&bus, holder).await;
        (lease, Instant::now())
    })
}

#[tokio::test]
async fn a_standby_waits_while_the_holder_renews_and_takes_over_one_ttl_after_it_dies() {
    let server = NatsServer::start();
    let (bus_a, bus_b) = (connect(&server).await, connect(&server).await);
    let mut a = acquire(&bus_a, "router-a").await;
    let standby = contend(&bus_b, "router-b");

    // Three TTLs of renewals: the standby must not get in.
    let until = Instant::now() + TTL * 3;
    while Instant::now() < until {
        a.renew().await.expect("the holder keeps its lease");
        assert!(a.valid());
        assert!(!standby.is_finished(), "the standby took a lease that was being renewed");
        tokio::time::sleep(a.renew_every()).await;
    }

    // The holder dies without a word (as after kill -9): its last renewal was just now.
    let died = Instant::now();
    let (mut b, got_at) = tokio::time::timeout(TTL * 4, standby).await.expect("standby took over").unwrap();
    let waited = got_at - died;
    assert!(waited >= TTL - a.renew_every(), "took over after {waited:?}, before the TTL had passed");
    assert!(waited <= TTL * 2 + Duration::from_millis(500), "took over only after {waited:?}");
    assert!(b.revision() > a.revision(), "the revision is a fencing token: it grows");

    // By then the old holder already counts itself expired, and its renewal is refused.
    assert!(!a.valid(), "a holder that did not renew must stop acting before anyone takes over");
    let lost = a.renew().await.unwrap_err();
    assert!(lost.reason.contains("another process"), "{lost}");
    b.renew().await.expect("the new holder renews");
}

#[tokio::test]
async fn a_released_lease_is_taken_at_once_and_shutdown_stops_contending() {
    let server = NatsServer::start();
    let (bus_a, bus_b) = (connect(&server).await, connect(&server).await);
    let a = acquire(&bus_a, "router-a").await;
    let standby = contend(&bus_b, "router-b");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!standby.is_finished());

    let released = Instant::now();
    a.release().await;
    let (b, got_at) = tokio::time::timeout(TTL, standby).await.expect("taken well within the TTL").unwrap();
    assert!(got_at - released < TTL, "a released lease must not wait for its TTL");

    let shutdown = CancellationToken::new();
    let bus_c = bus_a.clone();
    let stop = shutdown.clone();
    let third = tokio::spawn(async move { bus_c.acquire_lease("router.default", "router-c", TTL, &stop).await });
    shutdown.cancel();
    let outcome = tokio::time::timeout(Duration::from_secs(5), third).await.expect("returns on shutdown").unwrap();
    assert!(outcome.unwrap().is_none(), "a cancelled contender gets nothing");
    drop(b);
}

#[tokio::test]
async fn different_leases_are_independent() {
    let server = NatsServer::start();
    let bus = connect(&server).await;
    let none = CancellationToken::new();
    let one = bus.acquire_lease("router.g1", "p", TTL, &none).await.unwrap().unwrap();
    let two = tokio::time::timeout(TTL / 2, bus.acquire_lease("router.g2", "p", TTL, &none))
        .await
        .expect("another group's lease is free")
        .unwrap()
        .unwrap();
    assert_ne!(one.key(), two.key());
}
