//! Email end to end through the daemon, against real mail servers: a customer writes to support,
//! the offer reaches the agent's own mailbox, the agent accepts and answers by replying to it, and
//! the customer receives the answer threaded under their message. Mail that is not the agent's
//! own cannot act for the agent, and an unknown command is answered with what went wrong.

use serde_json::json;
use switchboard_e2e::TestDaemon;
use switchboard_e2e::mail::{MailSetup, address_in, header, mails};
use switchboard_testkit::MailServer;

#[tokio::test]
async fn a_customer_mail_is_answered_by_an_agent_working_from_their_mailbox() {
    let server = MailServer::start();
    let dir = tempfile::tempdir().unwrap();
    let mail = MailSetup::new(&server, dir.path());
    let (support, agent, customer) = (server.address("support"), server.address("agent1"), server.address("customer"));
    let daemon = TestDaemon::start(None, move |c| {
        c.router.enabled = true;
        c.routing = serde_json::from_value(json!({
            "default_team": "support",
            "teams": { "support": { "offer_timeout_secs": 300 } },
            "agents": [ { "id": "alice", "name": "Alice", "teams": ["support"], "tiers": ["L1"], "status": "online" } ]
        }))
        .unwrap();
        mail.apply(c);
    })
    .await;

    let question = format!(
        "From: Ada <{customer}>\r\nTo: {support}\r\nSubject: Order 17\r\nMessage-ID: <q1@customer.test>\r\n\r\nWhere is order 17?\r\n"
    );
    server.deliver_raw(&support, question.as_bytes());

    // The offer reaches the agent's own mailbox, with the history and a signed reply address.
    let offer = mails(&server, "agent1", 1).await.remove(0);
    assert!(header(&offer, "Subject").ends_with("Order 17"), "{offer}");
    assert!(offer.contains("Where is order 17?") && offer.contains("#accept"), "{offer}");
    let reply_to = address_in(&header(&offer, "Reply-To"));
    assert!(reply_to.starts_with("support+a"), "{reply_to}");

    // Somebody else replying to the agent's mail cannot act for the agent.
    let forged = format!(
        "From: Mallory <{customer}>\r\nTo: {reply_to}\r\nSubject: Re: offer\r\nMessage-ID: <f1@customer.test>\r\n\r\n#accept\r\nI am the agent now.\r\n"
    );
    server.deliver_raw(&support, forged.as_bytes());
    // An unknown command from the agent is answered, and nothing else happens.
    let typo = format!(
        "From: Alice <{agent}>\r\nTo: {reply_to}\r\nSubject: Re: offer\r\nMessage-ID: <a0@agent.test>\r\n\r\n#acept\r\n"
    );
    server.deliver_raw(&support, typo.as_bytes());
    let told = mails(&server, "agent1", 2).await.remove(1);
    assert!(told.contains("unknown command #acept"), "{told}");

    let answer = format!(
        "From: Alice <{agent}>\r\nTo: {reply_to}\r\nSubject: Re: offer\r\nMessage-ID: <a1@agent.test>\r\n\r\n#accept\r\nHello Ada, it left the warehouse today.\r\n\r\nOn Mon, Switchboard wrote:\r\n> Where is order 17?\r\n"
    );
    server.deliver_raw(&support, answer.as_bytes());
    let reply = mails(&server, "customer", 1).await.remove(0);
    assert!(reply.contains("Hello Ada, it left the warehouse today."), "{reply}");
    assert!(!reply.contains("#accept") && !reply.contains("> Where is order 17?"), "only the new text: {reply}");
    assert_eq!(header(&reply, "In-Reply-To"), "<q1@customer.test>");
    assert!(header(&reply, "Subject").starts_with("Re: Order 17"), "{reply}");
    assert_eq!(server.messages("customer").len(), 1, "the forged mail sent nothing");
    daemon.stop().await;
}
