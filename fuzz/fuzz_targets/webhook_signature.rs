//! libFuzzer entry for `webhook_signature`; the body is `switchboard_fuzz_targets::webhook::run`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard_fuzz_targets::webhook::run(data));
