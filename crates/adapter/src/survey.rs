//! Survey answers (CSAT, NPS, CES): one `<kind>_received` event per conversation and survey,
//! whichever channel it came on.

use chrono::Utc;
use serde::Deserialize;
use switchboard_bus::{Bus, BusError, Published};
use switchboard_core::contract::{buckets, subjects};
use switchboard_core::{Event, SurveyKind};
use uuid::Uuid;

/// The `<kind>_received` event for a customer's answer to `kind`: `data.score` is the score.
pub fn survey_event(kind: SurveyKind, conversation: Uuid, agent: Option<String>, channel: &str, score: u8) -> Event {
    let mut data = serde_json::Map::new();
    data.insert("score".into(), score.into());
    Event {
        id: Uuid::now_v7(),
        at: Utc::now(),
        kind: kind.event_kind(),
        conversation_id: Some(conversation),
        agent_id: agent,
        channel: Some(channel.into()),
        data,
    }
}

/// The de-duplication id of a conversation's answer to `kind`: `<kind>:<conversation>`, so only
/// the first answer counts and a second (another button, another reply) is dropped by JetStream.
pub fn survey_msg_id(kind: SurveyKind, conversation: Uuid) -> String {
    kind.msg_id(conversation)
}

/// Publishes an answer built by [`survey_event`] on `sb.events.<kind>_received` and waits for
/// the store; a duplicate (the conversation was rated already) comes back with `duplicate` set.
pub async fn publish_survey(bus: &Bus, event: &Event) -> Result<Published, BusError> {
    let conversation = event.conversation_id.unwrap_or_default();
    // Every caller builds the event with `survey_event`; anything else is de-duplicated by id.
    let msg_id = match SurveyKind::of_event(event.kind) {
        Some(kind) => kind.msg_id(conversation),
        None => event.id.to_string(),
    };
    bus.publish(&subjects::event(event.kind.as_str()), event, &msg_id).await
}

/// Why a survey answer is refused: it changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SurveyRefusal {
    /// The conversation was asked another survey.
    #[error("this conversation was asked {asked}, not {answered}")]
    WrongSurvey {
        /// What was asked.
        asked: SurveyKind,
        /// What the answer is for.
        answered: SurveyKind,
    },
    /// The score is off the survey's scale.
    #[error("{0}")]
    OffScale(String),
}

/// What a channel checks before counting an answer: where the conversation is (so a forged
/// answer from another chat or source is refused) and who resolved it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ConversationRef {
    /// The customer's channel.
    pub channel: String,
    /// The thread the conversation is in on that channel.
    pub thread_key: String,
    /// The agent holding it; after a resolve, the agent who resolved it.
    #[serde(default)]
    pub agent: Option<String>,
    /// The survey asked on its last resolve; absent when none was (or the router predates NPS
    /// and CES, which asked CSAT only).
    #[serde(default)]
    pub survey: Option<SurveyKind>,
}

impl ConversationRef {
    /// The survey an answer is checked against: the one asked; CSAT for a record without one, as
    /// a router before NPS and CES wrote them (CSAT answers were taken without this check then).
    pub fn asked(&self) -> SurveyKind {
        self.survey.unwrap_or(SurveyKind::Csat)
    }

    /// Checks an answer to `kind` with `score` against the survey asked and its scale, and
    /// gives the score to store.
    pub fn check_answer(&self, kind: SurveyKind, score: i64) -> Result<u8, SurveyRefusal> {
        let asked = self.asked();
        if asked != kind {
            return Err(SurveyRefusal::WrongSurvey { asked, answered: kind });
        }
        kind.check(score).map_err(SurveyRefusal::OffScale)
    }
}

/// A conversation as the router last stored it (KV `sb_conversations`); `None` when unknown.
pub async fn conversation_ref(bus: &Bus, conversation: Uuid) -> Result<Option<ConversationRef>, BusError> {
    let store = bus.jetstream().get_key_value(buckets::CONVERSATIONS).await.map_err(|e| kv_error(&e))?;
    conversation_ref_in(&store, conversation).await
}

/// [`conversation_ref`] in a bucket handle the caller keeps, for callers that look up often.
pub async fn conversation_ref_in(
    store: &async_nats::jetstream::kv::Store,
    conversation: Uuid,
) -> Result<Option<ConversationRef>, BusError> {
    let value = store.get(conversation.to_string()).await.map_err(|e| kv_error(&e))?;
    // A record the router wrote but we cannot read counts as unknown rather than as an error
    // worth retrying: retrying will not make it readable.
    Ok(value.and_then(|v| serde_json::from_slice(&v).ok()))
}

fn kv_error(e: &dyn std::fmt::Display) -> BusError {
    BusError::Kv { bucket: buckets::CONVERSATIONS.into(), source: e.to_string().into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(survey: Option<SurveyKind>) -> ConversationRef {
        ConversationRef { channel: "telegram".into(), thread_key: "1".into(), agent: None, survey }
    }

    #[test]
    fn answers_are_checked_against_the_survey_asked_and_its_scale() {
        let c = Uuid::from_u128(5);
        let e = survey_event(SurveyKind::Nps, c, Some("alice".into()), "email", 9);
        assert_eq!((e.kind.as_str(), e.data["score"].as_u64()), ("nps_received", Some(9)));
        assert_eq!(survey_msg_id(SurveyKind::Ces, c), format!("ces:{c}"));
        let nps = record(Some(SurveyKind::Nps));
        assert_eq!(nps.check_answer(SurveyKind::Nps, 0), Ok(0));
        assert_eq!(nps.check_answer(SurveyKind::Nps, 10), Ok(10));
        assert_eq!(
            nps.check_answer(SurveyKind::Nps, 12).unwrap_err().to_string(),
            "12 is not on the nps scale (0 to 10)"
        );
        assert_eq!(
            nps.check_answer(SurveyKind::Csat, 5).unwrap_err().to_string(),
            "this conversation was asked nps, not csat"
        );
        // A record from before surveys were recorded: CSAT, as that router asked.
        let old: ConversationRef = serde_json::from_str(r#"{"channel":"email","thread_key":"t"}"#).unwrap();
        assert_eq!(old.check_answer(SurveyKind::Csat, 4), Ok(4));
        assert!(old.check_answer(SurveyKind::Nps, 4).is_err());
        assert!(record(Some(SurveyKind::Ces)).check_answer(SurveyKind::Ces, 8).is_err());
    }
}
