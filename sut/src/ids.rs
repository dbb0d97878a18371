//! Deterministic identifiers derived from idempotency keys.

/// FNV-1a, 64 bits: stable across processes and versions (unlike `DefaultHasher`).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The order id for a client idempotency key: the same key always names the same order.
pub fn order_id(idempotency_key: &str) -> String {
    format!("o-{:016x}", fnv1a64(idempotency_key.as_bytes()))
}

/// The idempotency key of one saga step of an order, e.g. `o-1234:charge`, `o-1234:reserve:0`.
pub fn step_key(order_id: &str, step: crate::roles::order::model::StepName) -> String {
    format!("{order_id}:{step}")
}

#[cfg(test)]
mod tests {
    /// The same key gives the same id; different keys give different ids.
    #[test]
    fn order_ids_are_stable() {
        assert_eq!(super::order_id("k1"), super::order_id("k1"));
        assert_ne!(super::order_id("k1"), super::order_id("k2"));
        assert_eq!(super::order_id("k1").len(), 18);
    }
}
