//! RFC 6962 Merkle tree math, independent of storage.
//!
//! leaf hash = SHA-256(0x00 ‖ leaf), node hash = SHA-256(0x01 ‖ left ‖ right).
//! The tree over n leaves splits at k, the largest power of two below n. Every subtree
//! such a split produces is a *perfect* subtree [i·2^l, (i+1)·2^l) or a right-edge
//! subtree made of perfect ones, so storing perfect-subtree hashes ("nodes", addressed
//! by level and index) is enough to answer any root, inclusion or consistency proof
//! with O(log² n) node reads and no rehashing of leaves.
//!
//! The algorithms take a `node(level, index)` lookup; the set of nodes they ask for does
//! not depend on the hash values, so a caller can run once to collect the ids, fetch
//! them in one query, and run again ([`needed_nodes`]).

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// SHA-256 of the empty string: the root of the empty tree.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Storage id of a perfect node: level in the top 16 bits, index below.
pub fn node_id(level: u32, index: u64) -> i64 {
    ((level as i64) << 48) | index as i64
}

/// Largest power of two strictly less than n (n ≥ 2).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// Hash of the subtree over leaves [lo, hi), lo aligned as RFC 6962 splits produce.
pub fn subtree<F: FnMut(u32, u64) -> Hash + ?Sized>(lo: u64, hi: u64, node: &mut F) -> Hash {
    let n = hi - lo;
    debug_assert!(n >= 1);
    if n.is_power_of_two() && lo.is_multiple_of(n) {
        return node(n.trailing_zeros(), lo >> n.trailing_zeros());
    }
    let k = split(n);
    let l = subtree(lo, lo + k, node);
    let r = subtree(lo + k, hi, node);
    node_hash(&l, &r)
}

/// Root of the tree of size n.
pub fn root<F: FnMut(u32, u64) -> Hash + ?Sized>(n: u64, node: &mut F) -> Hash {
    if n == 0 {
        empty_root()
    } else {
        subtree(0, n, node)
    }
}

/// Inclusion proof (audit path) of leaf m in the tree of size n, bottom-up (RFC 6962 §2.1.1).
pub fn inclusion_proof<F: FnMut(u32, u64) -> Hash + ?Sized>(
    m: u64,
    n: u64,
    node: &mut F,
) -> Vec<Hash> {
    assert!(m < n);
    let mut out = Vec::new();
    path(m, 0, n, node, &mut out);
    out
}

fn path<F: FnMut(u32, u64) -> Hash + ?Sized>(
    m: u64,
    lo: u64,
    hi: u64,
    node: &mut F,
    out: &mut Vec<Hash>,
) {
    let n = hi - lo;
    if n == 1 {
        return;
    }
    let k = split(n);
    if m < lo + k {
        path(m, lo, lo + k, node, out);
        out.push(subtree(lo + k, hi, node));
    } else {
        path(m, lo + k, hi, node, out);
        out.push(subtree(lo, lo + k, node));
    }
}

/// Consistency proof between sizes m and n, 0 < m ≤ n (RFC 6962 §2.1.2).
pub fn consistency_proof<F: FnMut(u32, u64) -> Hash + ?Sized>(
    m: u64,
    n: u64,
    node: &mut F,
) -> Vec<Hash> {
    assert!(0 < m && m <= n);
    let mut out = Vec::new();
    if m < n {
        subproof(m, 0, n, true, node, &mut out);
    }
    out
}

fn subproof<F: FnMut(u32, u64) -> Hash + ?Sized>(
    m: u64,
    lo: u64,
    hi: u64,
    complete: bool,
    node: &mut F,
    out: &mut Vec<Hash>,
) {
    let n = hi - lo;
    if m == n {
        if !complete {
            out.push(subtree(lo, hi, node));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, lo, lo + k, complete, node, out);
        out.push(subtree(lo + k, hi, node));
    } else {
        subproof(m - k, lo + k, hi, false, node, out);
        out.push(subtree(lo, lo + k, node));
    }
}

/// Node ids an algorithm will read, found by a dry run with dummy hashes.
pub fn needed_nodes(run: impl FnOnce(&mut dyn FnMut(u32, u64) -> Hash)) -> Vec<i64> {
    let mut ids = Vec::new();
    let mut rec = |l: u32, i: u64| {
        ids.push(node_id(l, i));
        [0u8; 32]
    };
    run(&mut rec);
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Perfect nodes completed by appending leaf `index`: (level, index) of each parent
/// that becomes complete, in bottom-up order; the caller hashes them with their left
/// siblings. Left siblings needed are `(l, (index >> l) - 1)` for each returned level.
pub fn completed_by_append(index: u64) -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    let mut level = 0;
    let mut i = index;
    while i & 1 == 1 {
        level += 1;
        i >>= 1;
        out.push((level, i));
    }
    out
}

// ---- Independent verification (what an outside auditor runs). ----

/// Verify an inclusion proof (RFC 9162 §2.1.3.2 algorithm).
pub fn verify_inclusion(leaf: &Hash, m: u64, n: u64, proof: &[Hash], root: &Hash) -> bool {
    if m >= n {
        return false;
    }
    let (mut fnode, mut snode) = (m, n - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && &r == root
}

/// Verify a consistency proof (RFC 9162 §2.1.4.2 algorithm).
pub fn verify_consistency(m: u64, n: u64, proof: &[Hash], root_m: &Hash, root_n: &Hash) -> bool {
    if m == 0 || m > n {
        return false;
    }
    if m == n {
        return proof.is_empty() && root_m == root_n;
    }
    if proof.is_empty() {
        return false;
    }
    let mut proof: Vec<Hash> = proof.to_vec();
    if m.is_power_of_two() {
        proof.insert(0, *root_m);
    }
    let (mut fnode, mut snode) = (m - 1, n - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let mut fr = proof[0];
    let mut sr = proof[0];
    for c in &proof[1..] {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    &fr == root_m && &sr == root_n && snode == 0
}

/// In-memory perfect-node store, for tests and the verifier.
#[derive(Default, Clone)]
pub struct MemTree {
    levels: Vec<Vec<Hash>>,
}

impl MemTree {
    pub fn push_leaf_hash(&mut self, h: Hash) {
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        self.levels[0].push(h);
        let idx = (self.levels[0].len() - 1) as u64;
        for (level, i) in completed_by_append(idx) {
            let l = level as usize;
            let left = self.levels[l - 1][(2 * i) as usize];
            let right = self.levels[l - 1][(2 * i + 1) as usize];
            if self.levels.len() <= l {
                self.levels.push(Vec::new());
            }
            self.levels[l].push(node_hash(&left, &right));
        }
    }

    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    pub fn node(&self, level: u32, index: u64) -> Hash {
        self.levels[level as usize][index as usize]
    }

    pub fn root(&self, n: u64) -> Hash {
        root(n, &mut |l, i| self.node(l, i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Leaf inputs of the public RFC 6962 test vectors (transparency-dev/merkle).
    const LEAVES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];
    /// Roots of the first 1..=8 leaves.
    const ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    fn vector_tree() -> MemTree {
        let mut t = MemTree::default();
        for l in LEAVES {
            t.push_leaf_hash(leaf_hash(&hex::decode(l).unwrap()));
        }
        t
    }

    #[test]
    fn rfc6962_roots_match_public_vectors() {
        let t = vector_tree();
        for (i, want) in ROOTS.iter().enumerate() {
            assert_eq!(
                hex::encode(t.root(i as u64 + 1)),
                *want,
                "root of size {}",
                i + 1
            );
        }
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn rfc6962_inclusion_vectors() {
        // From transparency-dev/merkle testdata: leaf 0 in tree of 8, leaf 5 in tree of 8,
        // leaf 2 in tree of 3, leaf 1 in tree of 5.
        let t = vector_tree();
        let get = |m: u64, n: u64| -> Vec<String> {
            inclusion_proof(m, n, &mut |l, i| t.node(l, i))
                .iter()
                .map(hex::encode)
                .collect()
        };
        assert_eq!(
            get(0, 8),
            vec![
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ]
        );
        assert_eq!(
            get(5, 8),
            vec![
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ]
        );
        assert_eq!(
            get(2, 3),
            vec!["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]
        );
        assert_eq!(
            get(1, 5),
            vec![
                "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ]
        );
    }

    #[test]
    fn rfc6962_consistency_vectors() {
        let t = vector_tree();
        let get = |m: u64, n: u64| -> Vec<String> {
            consistency_proof(m, n, &mut |l, i| t.node(l, i))
                .iter()
                .map(hex::encode)
                .collect()
        };
        assert_eq!(
            get(1, 8),
            vec![
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ]
        );
        assert_eq!(
            get(6, 8),
            vec![
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ]
        );
        assert_eq!(
            get(2, 5),
            vec![
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
            ]
        );
    }

    fn tree_of(n: u64) -> MemTree {
        let mut t = MemTree::default();
        for i in 0..n {
            t.push_leaf_hash(leaf_hash(&i.to_le_bytes()));
        }
        t
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn every_inclusion_proof_verifies_and_bitflips_fail(n in 1u64..300, m_seed: u64, bit: usize) {
            let t = tree_of(n);
            let m = m_seed % n;
            let root = t.root(n);
            let leaf = t.node(0, m);
            let proof = inclusion_proof(m, n, &mut |l, i| t.node(l, i));
            prop_assert!(verify_inclusion(&leaf, m, n, &proof, &root));
            // Flip one bit somewhere in the leaf, the proof or the root.
            let total_bits = 256 * (proof.len() + 2);
            let b = bit % total_bits;
            let (which, byte, mask) = (b / 256, (b % 256) / 8, 1u8 << (b % 8));
            let (mut leaf2, mut proof2, mut root2) = (leaf, proof.clone(), root);
            match which {
                0 => leaf2[byte] ^= mask,
                w if w == proof.len() + 1 => root2[byte] ^= mask,
                w => proof2[w - 1][byte] ^= mask,
            }
            prop_assert!(!verify_inclusion(&leaf2, m, n, &proof2, &root2));
        }

        #[test]
        fn every_consistency_proof_verifies_and_bitflips_fail(n in 1u64..300, m_seed: u64, bit: usize) {
            let t = tree_of(n);
            let m = 1 + m_seed % n;
            let (rm, rn) = (t.root(m), t.root(n));
            let proof = consistency_proof(m, n, &mut |l, i| t.node(l, i));
            prop_assert!(verify_consistency(m, n, &proof, &rm, &rn));
            let total_bits = 256 * (proof.len() + 2);
            let b = bit % total_bits;
            let (which, byte, mask) = (b / 256, (b % 256) / 8, 1u8 << (b % 8));
            let (mut rm2, mut rn2, mut proof2) = (rm, rn, proof.clone());
            match which {
                0 => rm2[byte] ^= mask,
                w if w == proof.len() + 1 => rn2[byte] ^= mask,
                w => proof2[w - 1][byte] ^= mask,
            }
            prop_assert!(!verify_consistency(m, n, &proof2, &rm2, &rn2));
        }
    }

    #[test]
    fn needed_nodes_is_logarithmic() {
        let ids = needed_nodes(|f| {
            inclusion_proof(123_456, 1_000_000, f);
            root(1_000_000, f);
        });
        assert!(ids.len() < 60, "{}", ids.len());
    }
}
