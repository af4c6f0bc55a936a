//! Files sent to the bot (by customers, and by agents answering them): fetched with `getFile`
//! into the object store `sb_attachments` within a size limit, and what else the update handler
//! needs to answer customers in their chat (the sender, the `/start` greeting).

use switchboard_adapter::SendError;
use switchboard_bus::Bus;
use switchboard_core::Envelope;
use switchboard_core::contract::ATTACHMENTS_STORE;
use switchboard_core::envelope::AttachmentRef;
use teloxide_core::prelude::Requester;
use teloxide_core::types::Message;

use crate::kinds::{Content, content};
use crate::outbound::{Sender, classify};

/// The answer to a customer's bare `/start` when `start_greeting` is not configured.
pub const DEFAULT_GREETING: &str = "Hello! Write your question here and we will answer you in this chat.";

/// Fetches files into the object store, within a size limit, and answers customers.
#[derive(Clone)]
pub struct Files {
    /// The bot's sender: downloads, and answers in customers' chats within the bot's limits.
    pub sender: Sender,
    /// Largest file fetched, in bytes; bigger ones are listed as skipped.
    pub max_bytes: u64,
    /// The answer to a customer's bare `/start`.
    pub greeting: String,
}

/// Why a file was not fetched: over the limit.
pub(crate) fn over_limit(max_bytes: u64) -> String {
    format!("over the {max_bytes} byte limit")
}

impl Files {
    /// The bot.
    pub fn bot(&self) -> &teloxide_core::Bot {
        self.sender.bot()
    }

    /// Stores the message's file (photo, document, voice, audio, video, video note, sticker,
    /// animation) under `telegram/<file unique id>`, so a redelivery overwrites, and fills in the
    /// envelope's reference; over the limit it stays listed as skipped. A download that fails is
    /// an error: the update is tried again.
    pub(crate) async fn fetch(&self, bus: &Bus, m: &Message, envelope: &mut Envelope) -> Result<(), String> {
        let Content::Carried { file, .. } = content(m) else { return Ok(()) };
        for (meta, attachment) in file.iter().map(|f| &f.meta).zip(envelope.attachments.iter_mut()) {
            let facts = (meta.id.0.as_str(), meta.unique_id.0.as_str(), u64::from(meta.size));
            fetch_file(self.bot(), self.max_bytes, bus, facts, attachment).await?;
        }
        Ok(())
    }
}

/// Fetches one file into the object store under `telegram/<unique id>` and fills in
/// `attachment` (object and size), or marks it skipped when it is over `max_bytes` (by its stated
/// size, or by what came).
pub(crate) async fn fetch_file(
    bot: &teloxide_core::Bot,
    max_bytes: u64,
    bus: &Bus,
    (file_id, unique_id, size): (&str, &str, u64),
    attachment: &mut AttachmentRef,
) -> Result<(), String> {
    use teloxide_core::net::Download;
    if size > max_bytes {
        attachment.skipped = Some(over_limit(max_bytes));
        return Ok(());
    }
    let file = bot.get_file(teloxide_core::types::FileId(file_id.into())).await.map_err(|e| classify(e).reason)?;
    let mut bytes = Vec::new();
    bot.download_file(&file.path, &mut bytes).await.map_err(|e| format!("download a file: {e}"))?;
    if bytes.len() as u64 > max_bytes {
        attachment.skipped = Some(over_limit(max_bytes));
        return Ok(());
    }
    let store =
        bus.jetstream().get_object_store(ATTACHMENTS_STORE).await.map_err(|e| format!("attachment store: {e}"))?;
    let object = format!("telegram/{unique_id}");
    store.put(object.as_str(), &mut bytes.as_slice()).await.map_err(|e| format!("store a file: {e}"))?;
    (attachment.object, attachment.size, attachment.skipped) = (object, bytes.len() as u64, None);
    Ok(())
}

/// Telegram's limit on a file a bot uploads (50 MB): a bigger stored file cannot be sent.
pub(crate) const MAX_UPLOAD_BYTES: u64 = 50 * 1024 * 1024;

/// A stored file's bytes (`sb_attachments`), to send.
pub(crate) async fn read_object(bus: &switchboard_bus::BusSlot, object: &str) -> Result<Vec<u8>, SendError> {
    let bus = bus.get().map_err(|e| SendError::retryable(e.to_string()))?;
    switchboard_adapter::read_attachment(bus, object, MAX_UPLOAD_BYTES).await
}

/// A file as the envelope lists it: the Telegram file id stands in for the object until the
/// content is fetched.
pub(crate) fn file_ref(file_id: &str, name: &str, mime: &str, size: u32) -> AttachmentRef {
    AttachmentRef {
        object: String::new(),
        filename: name.into(),
        content_type: mime.into(),
        size: u64::from(size),
        skipped: Some(format!("telegram file {file_id}, not fetched")),
    }
}
