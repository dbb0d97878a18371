//! Lowe's memo of visited configurations: the set of linearized operations and the model state
//! reached. A configuration seen before cannot lead anywhere new, so the search skips it.
//!
//! The set is a bitset over operation ranks (ranked by completion). Its hash is maintained
//! incrementally by the search (Zobrist: the XOR of a random 64-bit key per linearized rank), so
//! hashing costs O(1) per step; it is mixed with a hash of the state. Every hash hit is confirmed
//! by comparing the state and the set itself, so a collision can never merge two different
//! configurations.
//!
//! The set is stored compactly: because ranks follow completion order, the linearized set is
//! almost always "every rank below some k, plus a few just above". An entry stores the index of
//! the first bitset word that is not all ones and the words from there to the last non-zero one
//! (usually one or two words), not the whole bitset. That pair is canonical for the set: two
//! equal sets give equal windows.
//!
//! The table is open addressing with linear probing over `u32` slots; entries and windows live
//! in two flat vectors, so an insert allocates only when a vector grows (amortised doubling).

/// An entry: the full hash, the state, and where its window of set words lives.
#[derive(Debug, Clone, Copy)]
struct Entry {
    hash: u64,
    state: u64,
    lo_word: u32,
    offset: u32,
    len: u32,
}

/// The memo table.
#[derive(Debug)]
pub(crate) struct Cache {
    slots: Vec<u32>,
    entries: Vec<Entry>,
    words: Vec<u64>,
}

/// Initial number of slots (a power of two).
const INITIAL_SLOTS: usize = 1 << 10;

/// Mixes a model state into 64 well-spread bits (the splitmix64 finaliser).
#[inline(always)]
pub(crate) fn mix_state(state: u64) -> u64 {
    let mut z = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl Cache {
    /// An empty memo.
    pub(crate) fn new() -> Cache {
        Cache {
            slots: vec![0; INITIAL_SLOTS],
            entries: Vec::with_capacity(INITIAL_SLOTS / 2),
            words: Vec::with_capacity(INITIAL_SLOTS),
        }
    }

    /// Number of configurations stored.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Bytes held by the table.
    pub(crate) fn bytes(&self) -> usize {
        self.slots.capacity() * 4
            + self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.words.capacity() * 8
    }

    /// Records the configuration (`hash`, `state`, the set whose words from `lo_word` on are
    /// `window`). Returns true if it is new, false if it was already recorded. `hash` must be a
    /// function of the state and the set only.
    #[inline]
    pub(crate) fn insert(&mut self, hash: u64, state: u64, lo_word: u32, window: &[u64]) -> bool {
        let mask = self.slots.len() - 1;
        let mut slot = (hash as usize) & mask;
        loop {
            let at = self.slots[slot];
            if at == 0 {
                break;
            }
            let e = self.entries[(at - 1) as usize];
            if e.hash == hash
                && e.state == state
                && e.lo_word == lo_word
                && e.len as usize == window.len()
                && self.words[e.offset as usize..(e.offset + e.len) as usize] == *window
            {
                return false;
            }
            slot = (slot + 1) & mask;
        }
        let offset = self.words.len() as u32;
        self.words.extend_from_slice(window);
        self.entries.push(Entry {
            hash,
            state,
            lo_word,
            offset,
            len: window.len() as u32,
        });
        self.slots[slot] = self.entries.len() as u32;
        if self.entries.len() * 2 > self.slots.len() {
            self.grow();
        }
        true
    }

    fn grow(&mut self) {
        let size = self.slots.len() * 2;
        let mask = size - 1;
        let mut slots = vec![0u32; size];
        for (i, e) in self.entries.iter().enumerate() {
            let mut slot = (e.hash as usize) & mask;
            while slots[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            slots[slot] = i as u32 + 1;
        }
        self.slots = slots;
    }
}

/// The set of linearized ranks with what the memo needs maintained incrementally: the Zobrist
/// hash and bounds of the window of words that are neither all ones (below) nor zero (above).
#[derive(Debug)]
pub(crate) struct LinSet {
    words: Vec<u64>,
    keys: Vec<u64>,
    hash: u64,
    lo_word: usize,
    hi_word: usize,
}

impl LinSet {
    /// An empty set over `n` ranks, with Zobrist keys drawn from a fixed seed.
    pub(crate) fn new(n: usize) -> LinSet {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let keys = (0..n)
            .map(|_| {
                seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
                mix_state(seed)
            })
            .collect();
        LinSet {
            words: vec![0; n.div_ceil(64)],
            keys,
            hash: 0,
            lo_word: 0,
            hi_word: 0,
        }
    }

    /// Adds `rank` (not present).
    #[inline(always)]
    pub(crate) fn set(&mut self, rank: u32) {
        let w = (rank / 64) as usize;
        self.words[w] |= 1u64 << (rank % 64);
        self.hash ^= self.keys[rank as usize];
        if w + 1 > self.hi_word {
            self.hi_word = w + 1;
        }
    }

    /// Removes `rank` (present).
    #[inline(always)]
    pub(crate) fn clear(&mut self, rank: u32) {
        let w = (rank / 64) as usize;
        self.words[w] &= !(1u64 << (rank % 64));
        self.hash ^= self.keys[rank as usize];
        if w < self.lo_word {
            self.lo_word = w;
        }
    }

    /// The Zobrist hash of the set.
    #[inline(always)]
    pub(crate) fn hash(&self) -> u64 {
        self.hash
    }

    /// The canonical window: index of the first word not all ones, and the words from it to the
    /// last non-zero word.
    #[inline(always)]
    pub(crate) fn window(&mut self) -> (u32, &[u64]) {
        while self.lo_word < self.words.len() && self.words[self.lo_word] == u64::MAX {
            self.lo_word += 1;
        }
        if self.hi_word < self.lo_word {
            self.hi_word = self.lo_word;
        }
        while self.hi_word > self.lo_word && self.words[self.hi_word - 1] == 0 {
            self.hi_word -= 1;
        }
        (self.lo_word as u32, &self.words[self.lo_word..self.hi_word])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves the memo answers "seen" exactly for equal (set, state) pairs: same set and state
    /// is found, a different state or a different set is new, and equal sets built in different
    /// orders (different clear/set histories) produce the same window and hash.
    #[test]
    fn memo_is_exact() {
        let mut cache = Cache::new();
        let mut a = LinSet::new(200);
        for r in [0, 1, 2, 150] {
            a.set(r);
        }
        let h = a.hash();
        let (lo, w) = a.window();
        let w = w.to_vec();
        assert!(cache.insert(h ^ mix_state(7), 7, lo, &w));
        assert!(!cache.insert(h ^ mix_state(7), 7, lo, &w));
        assert!(cache.insert(h ^ mix_state(8), 8, lo, &w));

        let mut b = LinSet::new(200);
        for r in [150, 9, 2, 1, 0] {
            b.set(r);
        }
        b.clear(9);
        assert_eq!(b.hash(), h);
        let (lo_b, w_b) = b.window();
        assert_eq!((lo_b, w_b), (lo, &w[..]));

        // Same hash forced, different set: the equality check keeps them apart.
        b.set(3);
        let (lo_c, w_c) = b.window();
        let w_c = w_c.to_vec();
        assert!(cache.insert(h ^ mix_state(7), 7, lo_c, &w_c));
        assert_eq!(cache.len(), 3);
    }

    /// Proves the window skips full words and trailing zero words, and survives table growth.
    #[test]
    fn window_is_compact_and_growth_keeps_entries() {
        let mut s = LinSet::new(64 * 5);
        for r in 0..128 {
            s.set(r);
        }
        s.set(130);
        let (lo, w) = s.window();
        assert_eq!(lo, 2);
        assert_eq!(w, &[1u64 << 2]);
        s.clear(5);
        let (lo, w) = s.window();
        assert_eq!((lo, w.len()), (0, 3));

        let mut cache = Cache::new();
        for i in 0..10_000u64 {
            assert!(cache.insert(mix_state(i), i, 0, &[i]));
        }
        for i in 0..10_000u64 {
            assert!(!cache.insert(mix_state(i), i, 0, &[i]));
        }
        assert!(cache.bytes() > 10_000 * 8);
    }
}
