//! Turning raw RFC 5322 messages into what the channel needs (filled in by the parsing work).
