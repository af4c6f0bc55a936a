//! Switchboard's Telegram channel.
//!
//! A Telegram bot is a customer channel (updates in by long polling or webhook, replies out with
//! Telegram's rate limits respected) and an agent endpoint (offers with Accept/Decline buttons,
//! replies mapped back to their conversation). Customer- and agent-supplied text is always escaped.
//! It never decides routing and never logs message bodies or the bot token.

pub mod format;
