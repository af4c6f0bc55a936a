//! The bodies of Switchboard's fuzz targets: untrusted bytes in, and nothing may panic.
//!
//! Each target is a function from bytes to nothing that panics (an assertion) when a property
//! fails. `fuzz/fuzz_targets/*.rs` hands them to libFuzzer (`make fuzz`); the test in
//! `tests/corpus.rs` replays the checked-in seed corpora and the regression inputs of bugs found
//! by fuzzing through the same functions on every `cargo test`.

pub mod contract;
pub mod mime;
pub mod rules;
pub mod telegram;
pub mod webchat;
pub mod webhook;

/// A fuzz target's body: panics when the input breaks a property.
pub type Target = fn(&[u8]);

/// Every target by the name of its directory under `fuzz/corpus/` and its fuzz target binary.
pub const TARGETS: &[(&str, Target)] = &[
    ("contract_json", contract::run),
    ("mime", mime::run),
    ("telegram_update", telegram::run),
    ("webhook_signature", webhook::run),
    ("rules", rules::run),
    ("webchat_session", webchat::run),
];
