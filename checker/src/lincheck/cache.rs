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
//! The table is open addressing with linear probing over tagged `u64` slots; entries (with
//! their window inline) live in a flat vector, so an insert allocates only when a vector grows
//! (amortised doubling).

/// An entry: the full hash, the state, and its window of set words: inline when it has at most
/// [`INLINE_WORDS`] words (almost always), else at `words[0]` as an offset into the arena.
#[derive(Debug, Clone, Copy)]
struct Entry {
    hash: u64,
    state: u64,
    lo_word: u32,
    len: u32,
    words: [u64; INLINE_WORDS],
}

/// Window words stored in the entry itself.
const INLINE_WORDS: usize = 3;

/// The memo table.
#[derive(Debug)]
pub(crate) struct Cache {
    /// Open addressing, linear probing: 0 is empty, else the high 32 bits of the hash (the
    /// tag) and the entry index + 1 in the low 32 bits. A probe that meets a different tag
    /// never touches the entry.
    slots: Vec<u64>,
    entries: Vec<Entry>,
    arena: Vec<u64>,
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
            arena: Vec::new(),
        }
    }

    /// Number of configurations stored.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Bytes held by the table.
    pub(crate) fn bytes(&self) -> usize {
        self.slots.capacity() * 8
            + self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.arena.capacity() * 8
    }

    #[inline(always)]
    fn same(&self, e: &Entry, state: u64, lo_word: u32, window: &[u64]) -> bool {
        if e.state != state || e.lo_word != lo_word || e.len as usize != window.len() {
            return false;
        }
        if window.len() <= INLINE_WORDS {
            e.words.iter().zip(window).all(|(a, b)| a == b)
        } else {
            let at = e.words[0] as usize;
            self.arena[at..at + window.len()] == *window
        }
    }

    /// Records the configuration (`hash`, `state`, the set whose words from `lo_word` on are
    /// `window`). Returns true if it is new, false if it was already recorded. `hash` must be a
    /// function of the state and the set only.
    #[inline]
    pub(crate) fn insert(&mut self, hash: u64, state: u64, lo_word: u32, window: &[u64]) -> bool {
        let mask = self.slots.len() - 1;
        let tag = hash >> 32;
        let mut slot = (hash as usize) & mask;
        loop {
            let at = self.slots[slot];
            if at == 0 {
                break;
            }
            if at >> 32 == tag {
                let e = &self.entries[((at & 0xffff_ffff) - 1) as usize];
                if e.hash == hash && self.same(e, state, lo_word, window) {
                    return false;
                }
            }
            slot = (slot + 1) & mask;
        }
        let mut words = [0u64; INLINE_WORDS];
        if window.len() <= INLINE_WORDS {
            words[..window.len()].copy_from_slice(window);
        } else {
            words[0] = self.arena.len() as u64;
            self.arena.extend_from_slice(window);
        }
        self.entries.push(Entry {
            hash,
            state,
            lo_word,
            len: window.len() as u32,
            words,
        });
        self.slots[slot] = (tag << 32) | self.entries.len() as u64;
        if self.entries.len() * 2 > self.slots.len() {
            self.grow();
        }
        true
    }

    fn grow(&mut self) {
        let size = self.slots.len() * 2;
        let mask = size - 1;
        let mut slots = vec![0u64; size];
        for (i, e) in self.entries.iter().enumerate() {
            let mut slot = (e.hash as usize) & mask;
            while slots[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            slots[slot] = ((e.hash >> 32) << 32) | (i as u64 + 1);
        }
        self.slots = slots;
    }
}

/// The set of linearized ranks with what the memo needs maintained incrementally: the Zobrist
/// hash and bounds of the window of words that are neither all ones (below) nor zero (above).
///
/// Ranks `>= done` are info operations (ranked last, open to the end): they are linearized in
/// any order at any time, so they live in their own small bitset rather than stretching the
/// window of the completed ones. The memo key is the window followed by that bitset (whose
/// length is fixed, so the concatenation is unambiguous).
#[derive(Debug)]
pub(crate) struct LinSet {
    words: Vec<u64>,
    info: Vec<u64>,
    done: u32,
    keys: Vec<u64>,
    hash: u64,
    lo_word: usize,
    hi_word: usize,
    key: Vec<u64>,
}

impl LinSet {
    /// An empty set over `n` ranks of which those `>= done` are info operations, with Zobrist
    /// keys drawn from a fixed seed.
    pub(crate) fn new(n: usize, done: usize) -> LinSet {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let keys = (0..n)
            .map(|_| {
                seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
                mix_state(seed)
            })
            .collect();
        let info_words = (n - done).div_ceil(64);
        LinSet {
            words: vec![0; done.div_ceil(64)],
            info: vec![0; info_words],
            done: done as u32,
            keys,
            hash: 0,
            lo_word: 0,
            hi_word: 0,
            key: Vec::with_capacity(info_words + 8),
        }
    }

    /// Adds `rank` (not present).
    #[inline(always)]
    pub(crate) fn set(&mut self, rank: u32) {
        self.hash ^= self.keys[rank as usize];
        if rank >= self.done {
            let r = rank - self.done;
            self.info[(r / 64) as usize] |= 1u64 << (r % 64);
            return;
        }
        let w = (rank / 64) as usize;
        self.words[w] |= 1u64 << (rank % 64);
        if w + 1 > self.hi_word {
            self.hi_word = w + 1;
        }
    }

    /// Removes `rank` (present).
    #[inline(always)]
    pub(crate) fn clear(&mut self, rank: u32) {
        self.hash ^= self.keys[rank as usize];
        if rank >= self.done {
            let r = rank - self.done;
            self.info[(r / 64) as usize] &= !(1u64 << (r % 64));
            return;
        }
        let w = (rank / 64) as usize;
        self.words[w] &= !(1u64 << (rank % 64));
        if w < self.lo_word {
            self.lo_word = w;
        }
    }

    /// The Zobrist hash of the set.
    #[inline(always)]
    pub(crate) fn hash(&self) -> u64 {
        self.hash
    }

    /// The canonical key: index of the first word (of completed ranks) not all ones, and the
    /// words from it to the last non-zero word followed by the info bitset.
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
        self.key.clear();
        self.key
            .extend_from_slice(&self.words[self.lo_word..self.hi_word]);
        self.key.extend_from_slice(&self.info);
        (self.lo_word as u32, &self.key)
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
        let mut a = LinSet::new(200, 200);
        for r in [0, 1, 2, 150] {
            a.set(r);
        }
        let h = a.hash();
        let (lo, w) = a.window();
        let w = w.to_vec();
        assert!(cache.insert(h ^ mix_state(7), 7, lo, &w));
        assert!(!cache.insert(h ^ mix_state(7), 7, lo, &w));
        assert!(cache.insert(h ^ mix_state(8), 8, lo, &w));

        let mut b = LinSet::new(200, 200);
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
        let mut s = LinSet::new(64 * 5, 64 * 5);
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
