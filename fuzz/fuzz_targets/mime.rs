//! libFuzzer entry for `mime`; the body is `switchboard_fuzz_targets::mime::run`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard_fuzz_targets::mime::run(data));
