//! A small stable hash (FNV-1a with a SplitMix64 finish) for values that must be the same on every
//! run and every Rust version: jitter, container IDs, machine IDs, derived CIDRs. `std`'s
//! `DefaultHasher` may change between releases, which would churn the golden files.

/// Hashes `parts` (with a separator so `["ab","c"]` and `["a","bc"]` differ) under `seed`.
pub fn hash64(parts: &[&str], seed: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0xff)) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// `n` lowercase hex digits derived from `parts` (a containerd ID is 64).
pub fn hex_id(parts: &[&str], n: usize) -> String {
    let mut out = String::with_capacity(n + 16);
    let mut seed = 0u64;
    while out.len() < n {
        out.push_str(&format!("{:016x}", hash64(parts, seed)));
        seed += 1;
    }
    out.truncate(n);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_and_separated() {
        assert_eq!(hash64(&["a"], 0), hash64(&["a"], 0));
        assert_ne!(hash64(&["ab", "c"], 0), hash64(&["a", "bc"], 0));
        assert_ne!(hash64(&["a"], 0), hash64(&["a"], 1));
        let id = hex_id(&["uid", "nginx", "0"], 64);
        assert_eq!(id.len(), 64);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        // Pinned (an independent computation of the same algorithm) so a change of the
        // function, which would churn every golden file, is noticed here first.
        assert_eq!(hash64(&["skiff"], 0), 0xd136_6557_6f66_50f6);
    }
}
