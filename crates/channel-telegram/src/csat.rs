//! The satisfaction survey in a customer's chat: five buttons under the question, and a press
//! becomes the conversation's `csat_received` event.

use switchboard_adapter::{conversation_ref, publish_survey, survey_event};
use switchboard_bus::Bus;
use switchboard_core::OutboundMessage;
use switchboard_core::SurveyKind;
use switchboard_core::contract::metadata;
use teloxide_core::payloads::AnswerCallbackQuerySetters;
use teloxide_core::prelude::Requester;
use teloxide_core::types::{CallbackQuery, ChatId, InlineKeyboardButton, InlineKeyboardMarkup, MessageId};
use tracing::{debug, warn};
use uuid::Uuid;

use crate::CHANNEL;
use crate::outcome::UpdateOutcome;

/// Callback data prefix of the survey's buttons: `csat:<conversation, 32 hex>:<score>`, 39 bytes,
/// well within Telegram's 64. The agent is not in it: it is read from the conversation's record.
const PREFIX: &str = "csat:";

/// Whether an outbound message is the survey question.
pub(crate) fn is_request(message: &OutboundMessage) -> bool {
    message.metadata.get(metadata::CSAT).is_some_and(|v| v == metadata::CSAT_REQUEST)
}

/// The buttons `1`..`5` under the question.
pub(crate) fn keyboard(conversation: Uuid) -> InlineKeyboardMarkup {
    let row = SurveyKind::Csat
        .scale()
        .map(|n| InlineKeyboardButton::callback(n.to_string(), format!("{PREFIX}{}:{n}", conversation.simple())))
        .collect::<Vec<_>>();
    InlineKeyboardMarkup::new([row])
}

/// Whether a button press is an answer to the survey (rather than an agent's button).
pub(crate) fn is_answer(q: &CallbackQuery) -> bool {
    q.data.as_deref().is_some_and(|d| d.starts_with(PREFIX))
}

/// The conversation and score a survey button's callback data names; `None` for anything else.
pub fn parse(data: &str) -> Option<(Uuid, u8)> {
    let (conversation, score) = data.strip_prefix(PREFIX)?.split_once(':')?;
    let score: u8 = score.parse().ok()?;
    Some((Uuid::try_parse(conversation).ok()?, score)).filter(|_| SurveyKind::Csat.scale().contains(&score))
}

/// A press of one of the survey's buttons: the answer is stored (only the first per conversation
/// counts), the customer thanked and the buttons taken away.
pub(crate) async fn handle(bus: &Bus, bot: &teloxide_core::Bot, q: &CallbackQuery) -> Result<UpdateOutcome, String> {
    let chat = q.message.as_ref().map(|m| m.chat().id.0).unwrap_or(q.from.id.0 as i64);
    let answer = |text: &'static str| async move {
        if let Err(e) = bot.answer_callback_query(q.id.clone()).text(text).await {
            warn!(error = %crate::outbound::classify(e), "cannot answer a survey button press");
        }
    };
    let Some((conversation, score)) = q.data.as_deref().and_then(parse) else {
        answer("Unknown button.").await;
        return Ok(UpdateOutcome::Refused("malformed survey button".into()));
    };
    // Callback data comes from the client: the conversation must be this chat's.
    let record = conversation_ref(bus, conversation).await.map_err(|e| e.to_string())?;
    let Some(record) = record.filter(|r| r.channel == CHANNEL && r.thread_key == chat.to_string()) else {
        answer("This survey is closed.").await;
        return Ok(UpdateOutcome::Refused("survey answer for an unknown conversation".into()));
    };
    let event = survey_event(SurveyKind::Csat, conversation, record.agent, CHANNEL, score);
    let published = publish_survey(bus, &event).await.map_err(|e| e.to_string())?;
    debug!(%conversation, duplicate = published.duplicate, "survey answered");
    answer("Thank you!").await;
    if let Some(m) = &q.message
        && let Err(e) = bot.edit_message_reply_markup(ChatId(chat), MessageId(m.id().0)).await
    {
        warn!(error = %crate::outbound::classify(e), "cannot remove the survey's buttons");
    }
    Ok(UpdateOutcome::Recorded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buttons_carry_conversation_and_score_within_64_bytes() {
        let c = Uuid::now_v7();
        let k = keyboard(c);
        assert_eq!(k.inline_keyboard[0].len(), 5);
        for (i, b) in k.inline_keyboard[0].iter().enumerate() {
            let teloxide_core::types::InlineKeyboardButtonKind::CallbackData(data) = &b.kind else { panic!() };
            assert!(data.len() <= 64);
            assert_eq!(parse(data), Some((c, i as u8 + 1)));
        }
        assert_eq!(parse(&format!("csat:{}:6", c.simple())), None);
        assert_eq!(parse("csat:nope:3"), None);
    }
}
