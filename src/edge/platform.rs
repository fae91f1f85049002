//! The platform's clock and randomness, handed to `core` as plain values.

use crate::core::Entropy;

/// Milliseconds since the epoch (`Date.now()`: no Date object made, as workers-rs' `Date` does).
pub fn now_ms() -> u64 {
    worker::js_sys::Date::now() as u64
}

pub struct Csprng;

impl Entropy for Csprng {
    fn fill(&mut self, buf: &mut [u8]) {
        // crypto.getRandomValues cannot fail for buffers this small.
        getrandom::getrandom(buf).expect("crypto.getRandomValues");
    }
}

pub fn random_array<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    Csprng.fill(&mut b);
    b
}
