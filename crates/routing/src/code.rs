//! Short conversation codes (`K4F2`) an agent can tell apart at a glance and type back.
//!
//! A code is derived from the conversation's slot in the engine's state, which no two live
//! conversations share, through a bijection of the slot's bits: live conversations never share
//! a code, codes do not count up visibly, and every router replaying the same journal derives
//! the same code.

/// Crockford's base-32 alphabet: no `I`, `L`, `O` or `U`, so codes read back without confusion.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// The code of conversation slot `slot`: 4 characters for the first 2^20 slots, then 5, 6, …
/// (a longer code never equals a shorter one, so codes stay distinct).
pub fn short_code(slot: u32) -> String {
    let mut chars = 4u32;
    while chars < 7 && u64::from(slot) >= 1u64 << (5 * chars) {
        chars += 1;
    }
    let bits = 5 * chars;
    let mask = (1u64 << bits) - 1;
    // Each step is a bijection on `bits` bits: multiplying by an odd number, an xor-shift, and
    // an xor with a constant.
    let mut x = u64::from(slot) & mask;
    x = x.wrapping_mul(0x9E37_79B1) & mask;
    x ^= x >> (bits / 2);
    x = x.wrapping_mul(0x85EB_CA6B) & mask;
    x ^= 0x2D5A_B3C7 & mask;
    (0..chars).rev().map(|i| ALPHABET[((x >> (5 * i)) & 31) as usize] as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn the_first_million_slots_have_distinct_four_character_codes() {
        let mut seen = HashSet::new();
        for slot in 0..(1u32 << 20) {
            let code = short_code(slot);
            assert_eq!(code.len(), 4, "slot {slot}");
            assert!(seen.insert(code), "slot {slot} repeats a code");
        }
    }

    #[test]
    fn neighbouring_slots_do_not_look_alike_and_larger_slots_get_longer_codes() {
        let (a, b) = (short_code(0), short_code(1));
        assert_ne!(a[..3], b[..3], "{a} {b}");
        assert_eq!(short_code(1 << 20).len(), 5);
        assert_eq!(short_code(u32::MAX).len(), 7);
    }
}
