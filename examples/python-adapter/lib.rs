//! Nothing here: the crate exists for `tests/end_to_end.rs`, which runs `sms_adapter.py`.
