//! Reading a stored attachment back (`sb_attachments`) to send it on a channel.

use switchboard_bus::Bus;
use switchboard_core::contract::ATTACHMENTS_STORE;

use crate::SendError;

/// The bytes of attachment `object`, at most `max_bytes` of them: a missing object or one over the
/// limit is a permanent failure (sending again would not help), a store that cannot be read now a
/// retryable one.
pub async fn read_attachment(bus: &Bus, object: &str, max_bytes: u64) -> Result<Vec<u8>, SendError> {
    let store = bus
        .jetstream()
        .get_object_store(ATTACHMENTS_STORE)
        .await
        .map_err(|e| SendError::retryable(format!("attachment store: {e}")))?;
    let mut reader = store.get(object).await.map_err(|e| SendError::permanent(format!("attachment {object}: {e}")))?;
    let size = reader.info.size as u64;
    if size > max_bytes {
        return Err(SendError::permanent(format!(
            "attachment {object} is {size} bytes, over the limit of {max_bytes}"
        )));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut bytes)
        .await
        .map_err(|e| SendError::retryable(format!("read attachment {object}: {e}")))?;
    Ok(bytes)
}
