//! libFuzzer entry for `webchat_session`; the body is `switchboard_fuzz_targets::webchat::run`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard_fuzz_targets::webchat::run(data));
