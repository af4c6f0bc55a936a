//! libFuzzer entry for `rules`; the body is `switchboard_fuzz_targets::rules::run`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard_fuzz_targets::rules::run(data));
