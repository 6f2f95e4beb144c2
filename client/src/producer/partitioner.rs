//! Choosing a record's partition, as Kafka's Java client does for keyed records.

use std::cell::Cell;

/// How records without an explicit partition are spread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Partitioner {
    /// Kafka's default for keyed records: `murmur2(key) & 0x7fffffff % partitions`, so the
    /// same key lands on the same partition as with the Java client; records without a key
    /// go round robin.
    #[default]
    Murmur2Key,
    /// Every record to the next partition in turn, keys ignored.
    RoundRobin,
}

impl Partitioner {
    /// The partition for a record with `key` among `partitions` (> 0); `counter` drives round robin.
    pub(crate) fn partition(self, key: Option<&[u8]>, partitions: u32, counter: &Cell<u32>) -> i32 {
        let slot = match (self, key) {
            (Partitioner::Murmur2Key, Some(key)) => positive(murmur2(key)) % partitions,
            _ => {
                let next = counter.get();
                counter.set(next.wrapping_add(1));
                next % partitions
            }
        };
        // slot < partitions, which came from an i32 partition count.
        slot as i32
    }
}

/// Kafka's `Utils.toPositive`: clears the sign bit (not `abs`, which overflows on `i32::MIN`).
fn positive(hash: i32) -> u32 {
    // Masked to 31 bits, so the cast is lossless.
    (hash & 0x7fff_ffff) as u32
}

/// Kafka's `Utils.murmur2`: 32-bit MurmurHash2 with seed 0x9747b28c, little-endian words.
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    // Java truncates the length to an int; so does this.
    let mut h = SEED ^ (data.len() as u32);
    let mut words = data.chunks_exact(4);
    for word in &mut words {
        let mut k = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = words.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if let Some(&first) = tail.first() {
        h ^= u32::from(first);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values from Kafka's UtilsTest.testMurmur2.
    #[test]
    fn murmur2_matches_kafka() {
        let cases: [(&str, i32); 6] = [
            ("21", -973_932_308),
            ("foobar", -790_332_482),
            ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829),
            (
                "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            ("abc", 479_470_107),
        ];
        for (input, expected) in cases {
            assert_eq!(murmur2(input.as_bytes()), expected, "murmur2({input:?})");
        }
    }

    #[test]
    fn keyed_records_follow_the_hash_and_null_keys_rotate() {
        let counter = Cell::new(0);
        let p = Partitioner::Murmur2Key;
        // positive(-973932308) = 1173551340; % 4 = 0, % 7 = 1173551340 % 7.
        assert_eq!(p.partition(Some(b"21"), 4, &counter), 0);
        assert_eq!(p.partition(Some(b"21"), 7, &counter), 1_173_551_340 % 7);
        assert_eq!(
            counter.get(),
            0,
            "keyed records do not move the round robin"
        );
        let spread: Vec<i32> = (0..6).map(|_| p.partition(None, 3, &counter)).collect();
        assert_eq!(spread, [0, 1, 2, 0, 1, 2]);
        let rr = Partitioner::RoundRobin;
        let counter = Cell::new(0);
        let spread: Vec<i32> = (0..4)
            .map(|_| rr.partition(Some(b"21"), 2, &counter))
            .collect();
        assert_eq!(spread, [0, 1, 0, 1]);
    }

    #[test]
    fn the_sign_bit_is_masked_not_negated() {
        assert_eq!(positive(i32::MIN), 0);
        assert_eq!(positive(-1), 0x7fff_ffff);
        assert_eq!(positive(5), 5);
    }
}
