//! libFuzzer entry for `contract_json`; the body is `switchboard_fuzz_targets::contract::run`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| switchboard_fuzz_targets::contract::run(data));
