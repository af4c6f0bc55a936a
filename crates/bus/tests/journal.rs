//! The router journal against a real NATS server: ordered replay, and a second writer fenced
//! off by the server.

use switchboard_bus::{AppendError, Bus, BusConfig};
use switchboard_core::contract::subjects;
use switchboard_testkit::NatsServer;
use tokio_util::sync::CancellationToken;

async fn connect(server: &NatsServer) -> Bus {
    let bus = Bus::connect(&BusConfig::for_url(server.url()), &CancellationToken::new()).await.unwrap();
    bus.ensure_contract().await.unwrap();
    bus
}

#[tokio::test]
async fn entries_replay_in_order_from_any_point_and_groups_are_separate() {
    let server = NatsServer::start();
    let bus = connect(&server).await;
    let mut j = bus.open_journal(&subjects::router_journal("g1")).await.unwrap();
    let mut other = bus.open_journal(&subjects::router_journal("g2")).await.unwrap();
    assert_eq!(j.last_sequence(), 0);
    let mut seqs = Vec::new();
    for i in 0..5 {
        seqs.push(j.append(format!("entry {i}").into(), &format!("g1:{i}")).await.unwrap().sequence);
        other.append(format!("other {i}").into(), &format!("g2:{i}")).await.unwrap();
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]));

    let all = j.read_after(0).await.unwrap();
    let texts: Vec<_> = all.iter().map(|e| String::from_utf8(e.payload.to_vec()).unwrap()).collect();
    assert_eq!(texts, ["entry 0", "entry 1", "entry 2", "entry 3", "entry 4"]);
    let tail = j.read_after(seqs[2]).await.unwrap();
    assert_eq!(tail.iter().map(|e| e.sequence).collect::<Vec<_>>(), &seqs[3..]);
    assert!(j.read_after(seqs[4]).await.unwrap().is_empty());

    // Reopening learns where the journal ends.
    let reopened = bus.open_journal(&subjects::router_journal("g1")).await.unwrap();
    assert_eq!(reopened.last_sequence(), seqs[4]);
}

#[tokio::test]
async fn a_second_writer_is_fenced_by_the_server() {
    let server = NatsServer::start();
    let bus = connect(&server).await;
    let subject = subjects::router_journal("default");
    let mut a = bus.open_journal(&subject).await.unwrap();
    let mut b = bus.open_journal(&subject).await.unwrap();

    let first = a.append("a1".into(), "a1").await.unwrap().sequence;
    // `b` opened when the journal was empty: its append would fork the history.
    let err = b.append("b1".into(), "b1").await.unwrap_err();
    assert!(matches!(err, AppendError::Fenced { expected: 0, .. }), "{err}");

    // A new leader opens after the old one's last append and continues; the old one is fenced.
    let mut b = bus.open_journal(&subject).await.unwrap();
    let second = b.append("b1".into(), "b1").await.unwrap().sequence;
    assert!(second > first);
    let err = a.append("a2".into(), "a2").await.unwrap_err();
    assert!(matches!(err, AppendError::Fenced { .. }), "{err}");

    let entries = b.read_after(0).await.unwrap();
    let texts: Vec<_> = entries.iter().map(|e| String::from_utf8(e.payload.to_vec()).unwrap()).collect();
    assert_eq!(texts, ["a1", "b1"], "only the writer in turn got in");
}

#[tokio::test]
async fn a_retried_append_whose_ack_was_lost_is_not_stored_twice() {
    let server = NatsServer::start();
    let bus = connect(&server).await;
    let subject = subjects::router_journal("default");
    // Two handles at the same position stand for one writer before and after a lost ack.
    let mut before = bus.open_journal(&subject).await.unwrap();
    let mut retry = bus.open_journal(&subject).await.unwrap();
    let seq = before.append("x".into(), "entry-1").await.unwrap().sequence;
    let again = retry.append("x".into(), "entry-1").await.expect("recognised as already appended");
    assert_eq!((again.sequence, again.duplicate), (seq, true), "the retry reports the original's sequence");
    assert_eq!(retry.read_after(0).await.unwrap().len(), 1, "stored once");
    // The same writer re-sending (e.g. a redelivered input) is recognised as a duplicate too.
    let dup = retry.append("x".into(), "entry-1").await.unwrap();
    assert_eq!((dup.sequence, dup.duplicate), (seq, true));
    // The retrying writer is back in step: its next append goes through.
    retry.append("y".into(), "entry-2").await.unwrap();
    assert!(matches!(before.append("z".into(), "entry-3").await, Err(AppendError::Fenced { .. })));
}

#[tokio::test]
async fn a_writer_whose_last_entries_were_deleted_continues_and_a_rival_is_still_fenced() {
    let server = NatsServer::start();
    let bus = connect(&server).await;
    let subject = subjects::router_journal("default");
    let mut j = bus.open_journal(&subject).await.unwrap();
    let first = j.append("a".into(), "e1").await.unwrap().sequence;
    let last = j.append("erase me".into(), "e2").await.unwrap().sequence;
    // An erasure deletes the entries that name the person, the journal's last one included.
    let stream = bus.jetstream().get_stream(switchboard_core::contract::streams::ROUTER).await.unwrap();
    stream.delete_message(last).await.unwrap();
    let next = j.append("b".into(), "e3").await.expect("the writer goes on after its deleted entry").sequence;
    assert!(next > last);
    let texts: Vec<_> =
        j.read_after(0).await.unwrap().iter().map(|e| String::from_utf8(e.payload.to_vec()).unwrap()).collect();
    assert_eq!(texts, ["a", "b"]);
    // A writer that fell behind is still fenced: the journal ends after where it left it.
    let mut stale = bus.open_journal(&subject).await.unwrap();
    j.append("c".into(), "e4").await.unwrap();
    assert!(matches!(stale.append("x".into(), "x1").await, Err(AppendError::Fenced { .. })));
    assert!(first < next);
}
