//! Sending to a customer: `messages.send` with a `random_id` derived from the outbound message's
//! id and the part's number (VK drops a repeat of a `random_id` itself, so a retry after a crash
//! between VK's answer and our ack sends nothing twice), text split at 4,096 characters, files
//! uploaded (`photos.getMessagesUploadServer` / `docs.getMessagesUploadServer`, upload, save) and
//! sent after the text, the parts done kept in KV (`vk.sent.<id>`) so a retry resumes at the
//! first part not sent, keyboards for surveys and the L0 bot's question.

use async_nats::jetstream::kv::Store;
use serde_json::{Value, json};
use switchboard_adapter::{SendError, read_attachment};
use switchboard_bus::Bus;
use switchboard_core::OutboundMessage;
use switchboard_core::envelope::AttachmentRef;
use tracing::warn;

use crate::api::{Api, ApiError};
use crate::wire::{self, MAX_TEXT_CHARS};

/// The `sb_channels` key of one outbound message's progress.
pub fn progress_key(id: &uuid::Uuid) -> String {
    format!("vk.sent.{}", id.simple())
}

/// How many parts of a message were sent, kept in KV when there is more than one.
struct Progress {
    kv: Option<(Store, String)>,
    done: usize,
}

impl Progress {
    async fn load(kv: Store, key: String, steps: usize) -> Result<Progress, SendError> {
        if steps <= 1 {
            return Ok(Progress { kv: None, done: 0 });
        }
        let value = kv.get(&key).await.map_err(|e| SendError::retryable(format!("read send progress: {e}")))?;
        let done = value.and_then(|v| String::from_utf8_lossy(&v).parse().ok()).unwrap_or(0);
        Ok(Progress { kv: Some((kv, key)), done })
    }

    async fn record(&mut self) -> Result<(), SendError> {
        self.done += 1;
        let Some((kv, key)) = &self.kv else { return Ok(()) };
        kv.put(key.as_str(), self.done.to_string().into())
            .await
            .map_err(|e| SendError::retryable(format!("store send progress: {e}")))?;
        Ok(())
    }

    /// Erases a finished message's progress, marker and all (best effort).
    async fn finish(self) {
        let Some((kv, key)) = self.kv else { return };
        if let Err(e) = kv.stream.purge().filter(format!("{}{key}", kv.prefix)).await {
            warn!(key, error = %e, "cannot erase finished send progress");
        }
    }
}

/// The keyboard under the last part: a survey's buttons, or the L0 bot's yes and no.
fn keyboard(message: &OutboundMessage) -> Option<Value> {
    use switchboard_core::contract::metadata;
    if let Some(kind) = switchboard_core::SurveyKind::of_question(&message.metadata) {
        return Some(wire::survey_keyboard(kind, message.conversation_id));
    }
    if message.metadata.get(metadata::L0_QUESTION).map(String::as_str) != Some(metadata::L0_HELPFUL) {
        return None;
    }
    let yes = message.metadata.get(metadata::L0_YES)?;
    let no = message.metadata.get(metadata::L0_NO)?;
    Some(wire::answer_keyboard(&[yes.as_str(), no.as_str()]))
}

/// Sends one outbound message; returns the first VK message id.
pub(crate) async fn send(
    api: &Api,
    bus: &Bus,
    kv: Store,
    max_file_bytes: u64,
    message: &OutboundMessage,
) -> Result<Option<i64>, SendError> {
    let peer: i64 = message
        .to
        .thread_key
        .parse()
        .map_err(|_| SendError::permanent(format!("`{}` is not a VK peer id", message.to.thread_key)))?;
    let parts = if message.text.trim().is_empty() { Vec::new() } else { wire::split(&message.text, MAX_TEXT_CHARS) };
    let files: Vec<&AttachmentRef> =
        message.attachments.iter().filter(|a| a.skipped.is_none() && !a.object.is_empty()).collect();
    let steps = parts.len() + files.len();
    let mut progress = Progress::load(kv, progress_key(&message.id), steps).await?;
    let key = message.id.simple().to_string();
    // Replies answer the customer's message: provider ids are `<peer>:<conversation message id>`.
    let reply = message
        .reply_to
        .as_deref()
        .and_then(|r| r.split_once(':'))
        .filter(|(p, _)| *p == message.to.thread_key)
        .and_then(|(_, c)| c.parse::<i64>().ok());
    let mut first = None;
    for step in progress.done..steps {
        let mut params = vec![("peer_id", peer.to_string()), ("random_id", wire::random_id(&key, step).to_string())];
        if let Some(text) = parts.get(step) {
            params.push(("message", text.clone()));
            if step == 0
                && let Some(cmid) = reply
            {
                let forward = json!({ "peer_id": peer, "conversation_message_ids": [cmid], "is_reply": true });
                params.push(("forward", forward.to_string()));
            }
            if step + 1 == parts.len()
                && let Some(k) = keyboard(message)
            {
                params.push(("keyboard", k.to_string()));
            }
        } else {
            let file = files[step - parts.len()];
            let attachment = upload(api, bus, peer, max_file_bytes, file).await?;
            params.push(("attachment", attachment));
        }
        let sent = api.call_waiting("messages.send", &params).await.map_err(ApiError::into_send_error)?;
        first = first.or(sent.as_i64());
        progress.record().await?;
    }
    progress.finish().await;
    Ok(first)
}

/// Whether a file goes as a photo (shown inline) rather than a document.
fn is_photo(content_type: &str) -> bool {
    ["image/jpeg", "image/png", "image/gif"].contains(&content_type.to_ascii_lowercase().as_str())
}

/// Uploads a stored file for `peer`; the `attachment` string `messages.send` takes.
async fn upload(api: &Api, bus: &Bus, peer: i64, max_bytes: u64, file: &AttachmentRef) -> Result<String, SendError> {
    let bytes = read_attachment(bus, &file.object, max_bytes).await?;
    let e = ApiError::into_send_error;
    if is_photo(&file.content_type) {
        let server =
            api.call_waiting("photos.getMessagesUploadServer", &[("peer_id", peer.to_string())]).await.map_err(e)?;
        let url = server["upload_url"].as_str().ok_or_else(|| SendError::retryable("no upload_url"))?;
        let up = api.upload(url, "photo", &file.filename, &file.content_type, bytes).await.map_err(e)?;
        let params = [
            ("server", up["server"].to_string()),
            ("photo", up["photo"].as_str().unwrap_or_default().to_string()),
            ("hash", up["hash"].as_str().unwrap_or_default().to_string()),
        ];
        let saved = api.call_waiting("photos.saveMessagesPhoto", &params).await.map_err(e)?;
        let photo = &saved[0];
        let (owner, id) = (photo["owner_id"].as_i64(), photo["id"].as_i64());
        let (Some(owner), Some(id)) = (owner, id) else { return Err(SendError::retryable("photo not saved")) };
        Ok(match photo["access_key"].as_str() {
            Some(k) => format!("photo{owner}_{id}_{k}"),
            None => format!("photo{owner}_{id}"),
        })
    } else {
        let params = [("type", "doc".to_string()), ("peer_id", peer.to_string())];
        let server = api.call_waiting("docs.getMessagesUploadServer", &params).await.map_err(e)?;
        let url = server["upload_url"].as_str().ok_or_else(|| SendError::retryable("no upload_url"))?;
        let up = api.upload(url, "file", &file.filename, &file.content_type, bytes).await.map_err(e)?;
        let uploaded = up["file"].as_str().ok_or_else(|| SendError::retryable("upload answered no file"))?;
        let params = [("file", uploaded.to_string()), ("title", file.filename.clone())];
        let saved = api.call_waiting("docs.save", &params).await.map_err(e)?;
        let doc = &saved["doc"];
        let (Some(owner), Some(id)) = (doc["owner_id"].as_i64(), doc["id"].as_i64()) else {
            return Err(SendError::retryable("document not saved"));
        };
        Ok(format!("doc{owner}_{id}"))
    }
}
