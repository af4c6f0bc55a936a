//! libFuzzer entry for `telegram_update`; the body is `switchboard_fuzz_targets::telegram::run`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard_fuzz_targets::telegram::run(data));
