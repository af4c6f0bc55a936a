//! The survey in a customer's chat (CSAT, NPS or CES): buttons under the question, and a press
//! becomes the conversation's `<kind>_received` event.

use switchboard_adapter::{conversation_ref, publish_survey, survey_event};
use switchboard_bus::Bus;
use switchboard_core::OutboundMessage;
use switchboard_core::SurveyKind;
use teloxide_core::payloads::AnswerCallbackQuerySetters;
use teloxide_core::prelude::Requester;
use teloxide_core::types::{CallbackQuery, ChatId, InlineKeyboardButton, InlineKeyboardMarkup, MessageId};
use tracing::{debug, warn};
use uuid::Uuid;

use crate::CHANNEL;
use crate::outcome::UpdateOutcome;

// Callback data of the survey's buttons: `<kind>:<conversation, 32 hex>:<score>`, e.g.
// `nps:0190…:10`, at most 39 bytes, well within Telegram's 64. CSAT buttons keep the `csat:` form
// they had before NPS and CES, so buttons already in chats still work. The agent is not in it: it
// is read from the conversation's record.

/// The survey an outbound message asks, if it is a survey question.
pub(crate) fn request(message: &OutboundMessage) -> Option<SurveyKind> {
    SurveyKind::of_question(&message.metadata)
}

/// The buttons under the question: one row for CSAT (1-5) and CES (1-7), two for NPS (0-5, 6-10)
/// so eleven buttons stay readable on a phone.
pub(crate) fn keyboard(kind: SurveyKind, conversation: Uuid) -> InlineKeyboardMarkup {
    let button = |n: u8| InlineKeyboardButton::callback(n.to_string(), format!("{kind}:{}:{n}", conversation.simple()));
    let buttons: Vec<_> = kind.scale().map(button).collect();
    match kind {
        SurveyKind::Nps => InlineKeyboardMarkup::new(buttons.chunks(6).map(<[_]>::to_vec)),
        SurveyKind::Csat | SurveyKind::Ces => InlineKeyboardMarkup::new([buttons]),
    }
}

/// Whether a button press is an answer to a survey (rather than an agent's button).
pub(crate) fn is_answer(q: &CallbackQuery) -> bool {
    q.data
        .as_deref()
        .is_some_and(|d| SurveyKind::ALL.iter().any(|k| d.strip_prefix(k.as_str()).is_some_and(|r| r.starts_with(':'))))
}

/// The survey, conversation and score a survey button's callback data names, exactly as
/// [`keyboard`] writes it (32 lowercase hex digits, a score without sign or leading zero, on the
/// survey's scale); `None` for anything else.
pub fn parse(data: &str) -> Option<(SurveyKind, Uuid, u8)> {
    let (kind, rest) = data.split_once(':')?;
    let kind = SurveyKind::parse(kind)?;
    let (conversation, score) = rest.split_once(':')?;
    let hex =
        conversation.len() == 32 && conversation.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let score: u8 = score.parse().ok().filter(|s: &u8| s.to_string() == score)?;
    (hex && kind.scale().contains(&score)).then_some((kind, Uuid::try_parse(conversation).ok()?, score))
}

/// A press of one of a survey's buttons: the answer is stored (only the first per conversation
/// counts), the customer thanked and the buttons taken away. A press for another survey than the
/// conversation was asked is refused and changes nothing.
pub(crate) async fn handle(bus: &Bus, bot: &teloxide_core::Bot, q: &CallbackQuery) -> Result<UpdateOutcome, String> {
    let chat = q.message.as_ref().map(|m| m.chat().id.0).unwrap_or(q.from.id.0 as i64);
    let answer = |text: &'static str| async move {
        if let Err(e) = bot.answer_callback_query(q.id.clone()).text(text).await {
            warn!(error = %crate::outbound::classify(e), "cannot answer a survey button press");
        }
    };
    let Some((kind, conversation, score)) = q.data.as_deref().and_then(parse) else {
        answer("Unknown button.").await;
        return Ok(UpdateOutcome::Refused("malformed survey button".into()));
    };
    // Callback data comes from the client: the conversation must be this chat's.
    let record = conversation_ref(bus, conversation).await.map_err(|e| e.to_string())?;
    let Some(record) = record.filter(|r| r.channel == CHANNEL && r.thread_key == chat.to_string()) else {
        answer("This survey is closed.").await;
        return Ok(UpdateOutcome::Refused("survey answer for an unknown conversation".into()));
    };
    let score = match record.check_answer(kind, i64::from(score)) {
        Ok(score) => score,
        Err(refused) => {
            answer("This survey is closed.").await;
            return Ok(UpdateOutcome::Refused(format!("survey answer refused: {refused}")));
        }
    };
    let event = survey_event(kind, conversation, record.agent, CHANNEL, score);
    let published = publish_survey(bus, &event).await.map_err(|e| e.to_string())?;
    debug!(%conversation, survey = %kind, duplicate = published.duplicate, "survey answered");
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

    fn data(b: &InlineKeyboardButton) -> &str {
        let teloxide_core::types::InlineKeyboardButtonKind::CallbackData(data) = &b.kind else { panic!() };
        data
    }

    #[test]
    fn buttons_carry_survey_conversation_and_score_within_64_bytes_and_parse_back_strictly() {
        let c = Uuid::now_v7();
        for (kind, rows) in [(SurveyKind::Csat, vec![5]), (SurveyKind::Nps, vec![6, 5]), (SurveyKind::Ces, vec![7])] {
            let k = keyboard(kind, c);
            assert_eq!(k.inline_keyboard.iter().map(Vec::len).collect::<Vec<_>>(), rows, "{kind}");
            let scores: Vec<u8> = k.inline_keyboard.iter().flatten().map(|b| b.text.parse().unwrap()).collect();
            assert_eq!(scores, kind.scale().collect::<Vec<_>>());
            for b in k.inline_keyboard.iter().flatten() {
                assert!(data(b).len() <= 64);
                assert_eq!(parse(data(b)), Some((kind, c, b.text.parse().unwrap())));
            }
        }
        let hex = c.simple();
        assert_eq!(parse(&format!("csat:{hex}:5")), Some((SurveyKind::Csat, c, 5)), "the form before NPS and CES");
        for bad in [
            format!("csat:{hex}:6"),
            format!("nps:{hex}:11"),
            format!("ces:{hex}:0"),
            format!("nps:{hex}:09"),
            format!("nps:{hex}:+9"),
            format!("nps:{hex}:-1"),
            format!("nps:{}:9", c.hyphenated()),
            format!("nps:{}:9", hex.to_string().to_uppercase()),
            format!("stars:{hex}:3"),
            format!("nps:{hex}"),
            "csat:nope:3".to_string(),
        ] {
            assert_eq!(parse(&bad), None, "{bad}");
        }
    }
}
