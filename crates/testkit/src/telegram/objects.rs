//! Bot API objects (User, Chat, Message, File) as Telegram serializes them, for updates and results.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

/// Supergroup and channel ids start at -1000000000000 (the `-100` prefix).
const SUPERGROUP_IDS: i64 = -1_000_000_000_000;

/// Now in Unix seconds, as in every `date` field.
pub(crate) fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// A human user; its names are derived from the id so the same id always looks the same.
pub(crate) fn user(user_id: i64) -> Value {
    json!({
        "id": user_id,
        "is_bot": false,
        "first_name": format!("User {user_id}"),
        "username": format!("user{user_id}"),
        "language_code": "en",
    })
}

/// A chat by its id's range, as Telegram numbers them: users' private chats are positive, basic groups
/// negative, supergroups below -10^12.
pub(crate) fn chat(chat_id: i64) -> Value {
    if chat_id > 0 {
        json!({
            "id": chat_id,
            "first_name": format!("User {chat_id}"),
            "username": format!("user{chat_id}"),
            "type": "private",
        })
    } else if chat_id > SUPERGROUP_IDS {
        json!({ "id": chat_id, "title": format!("Group {}", -chat_id), "type": "group" })
    } else {
        json!({ "id": chat_id, "title": format!("Supergroup {}", -chat_id), "type": "supergroup" })
    }
}

/// A message's common fields; the caller adds the content (`text`, `photo`, ...).
pub(crate) fn message(message_id: i64, chat_id: i64, from: Value) -> Value {
    json!({ "message_id": message_id, "from": from, "chat": chat(chat_id), "date": now() })
}

/// The entities Telegram finds itself in plain text: a leading `/command`.
pub(crate) fn auto_entities(text: &str) -> Option<Value> {
    let command = text.split_whitespace().next().filter(|word| word.starts_with('/') && word.len() > 1)?;
    let length = command.encode_utf16().count();
    Some(json!([{ "offset": 0, "length": length, "type": "bot_command" }]))
}

/// A guess at a file's MIME type from its name, as Telegram reports `mime_type`.
pub(crate) fn mime_type(file_name: &str) -> &'static str {
    let extension = file_name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match extension.as_str() {
        "pdf" => "application/pdf",
        "txt" => "text/plain",
        "csv" => "text/csv",
        "json" => "application/json",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}
