//! The Merkle tree of RFC 9162 §2.1 (Certificate Transparency 2.0), over which the audit log
//! is made tamper-evident: leaf hash `SHA-256(0x00 ‖ entry)`, interior node
//! `SHA-256(0x01 ‖ left ‖ right)`, a tree of `n` leaves split at the largest power of two
//! smaller than `n`.
//!
//! Hashes of *perfect* subtrees — `2^level` leaves starting at a multiple of `2^level` — are
//! what a log stores ([`NodeSource`]): each append completes at most `log2 n` of them
//! ([`completed_nodes`]), and any root or proof is then assembled from `O(log n)` of them,
//! however long the log. [`MemoryTree`] keeps them in memory, for verifiers and tests.
//!
//! Proof construction follows §2.1.3.1 (`PATH`) and §2.1.4.1 (`SUBPROOF`); verification
//! follows §2.1.3.2 and §2.1.4.2 step by step.

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// Why a root or proof cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    /// Asked about leaves the tree does not have (yet).
    #[error("{0}")]
    OutOfRange(String),
    /// The store lacks a node it should have: the log is incomplete or corrupt.
    #[error("missing tree node at level {level}, index {index}")]
    MissingNode {
        /// Level (0: leaves).
        level: u8,
        /// Index within the level.
        index: u64,
    },
}

/// `SHA-256(0x00 ‖ entry)`.
#[must_use]
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(entry);
    h.finalize().into()
}

/// `SHA-256(0x01 ‖ left ‖ right)`.
#[must_use]
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: `SHA-256()` of nothing.
#[must_use]
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Where perfect-subtree hashes come from: `node(level, index)` is the hash of leaves
/// `[index·2^level, (index+1)·2^level)` (level 0: the leaf hashes).
pub trait NodeSource {
    /// The node, if stored.
    fn node(&self, level: u8, index: u64) -> Option<Hash>;
}

fn node_of(src: &(impl NodeSource + ?Sized), level: u8, index: u64) -> Result<Hash, TreeError> {
    src.node(level, index)
        .ok_or(TreeError::MissingNode { level, index })
}

/// The largest power of two strictly smaller than `n` (`n ≥ 2`).
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// The hash of leaves `[start, end)`, from perfect subtrees (`start < end`).
fn range_hash(src: &(impl NodeSource + ?Sized), start: u64, end: u64) -> Result<Hash, TreeError> {
    let n = end - start;
    if n.is_power_of_two() && start.is_multiple_of(n) {
        let level = u8::try_from(n.trailing_zeros()).unwrap_or(u8::MAX);
        return node_of(src, level, start >> level);
    }
    let k = split(n);
    Ok(node_hash(
        &range_hash(src, start, start + k)?,
        &range_hash(src, start + k, end)?,
    ))
}

/// The root of the tree of the first `size` leaves.
pub fn root(src: &(impl NodeSource + ?Sized), size: u64) -> Result<Hash, TreeError> {
    if size == 0 {
        return Ok(empty_root());
    }
    range_hash(src, 0, size)
}

/// The perfect subtrees completed by appending the leaf `leaf` at `index` (so that the tree
/// then has `index + 1` leaves): the leaf itself, then each parent whose right edge it is.
/// A log stores all of them with the leaf.
pub fn completed_nodes(
    src: &(impl NodeSource + ?Sized),
    index: u64,
    leaf: Hash,
) -> Result<Vec<(u8, u64, Hash)>, TreeError> {
    let mut out = vec![(0, index, leaf)];
    let (mut level, mut i, mut hash) = (0u8, index, leaf);
    // While this node is a right child, its parent is now complete.
    while i % 2 == 1 {
        let left = node_of(src, level, i - 1)?;
        hash = node_hash(&left, &hash);
        level += 1;
        i /= 2;
        out.push((level, i, hash));
    }
    Ok(out)
}

/// RFC 9162 §2.1.3.1: the inclusion proof of leaf `index` in the tree of `size` leaves.
pub fn inclusion_proof(
    src: &(impl NodeSource + ?Sized),
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, TreeError> {
    if index >= size {
        return Err(TreeError::OutOfRange(format!(
            "leaf {index} is not in a tree of {size}"
        )));
    }
    let mut proof = Vec::new();
    path(src, index, 0, size, &mut proof)?;
    Ok(proof)
}

/// `PATH(m, D[start:end])`, appending bottom-up.
fn path(
    src: &(impl NodeSource + ?Sized),
    m: u64,
    start: u64,
    end: u64,
    out: &mut Vec<Hash>,
) -> Result<(), TreeError> {
    let n = end - start;
    if n <= 1 {
        return Ok(());
    }
    let k = split(n);
    if m < k {
        path(src, m, start, start + k, out)?;
        out.push(range_hash(src, start + k, end)?);
    } else {
        path(src, m - k, start + k, end, out)?;
        out.push(range_hash(src, start, start + k)?);
    }
    Ok(())
}

/// RFC 9162 §2.1.4.1: the consistency proof between the trees of `old` and `new` leaves.
pub fn consistency_proof(
    src: &(impl NodeSource + ?Sized),
    old: u64,
    new: u64,
) -> Result<Vec<Hash>, TreeError> {
    if old == 0 || old > new {
        return Err(TreeError::OutOfRange(format!(
            "no consistency proof from {old} to {new} leaves (need 0 < from ≤ to)"
        )));
    }
    let mut proof = Vec::new();
    subproof(src, old, 0, new, true, &mut proof)?;
    Ok(proof)
}

/// `SUBPROOF(m, D[start:end], b)`, appending bottom-up.
fn subproof(
    src: &(impl NodeSource + ?Sized),
    m: u64,
    start: u64,
    end: u64,
    complete: bool,
    out: &mut Vec<Hash>,
) -> Result<(), TreeError> {
    let n = end - start;
    if m == n {
        if !complete {
            out.push(range_hash(src, start, end)?);
        }
        return Ok(());
    }
    let k = split(n);
    if m <= k {
        subproof(src, m, start, start + k, complete, out)?;
        out.push(range_hash(src, start + k, end)?);
    } else {
        subproof(src, m - k, start + k, end, false, out)?;
        out.push(range_hash(src, start, start + k)?);
    }
    Ok(())
}

/// RFC 9162 §2.1.3.2: whether `proof` shows `leaf` at `index` in the tree of `size` leaves
/// whose root is `root`.
#[must_use]
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if sn == 0 {
            return false;
        }
        if fn_ % 2 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ % 2 == 0 {
                while fn_ % 2 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    sn == 0 && r == *root
}

/// RFC 9162 §2.1.4.2: whether `proof` shows the tree of `new` leaves with root `new_root`
/// extends the tree of `old` leaves with root `old_root`.
#[must_use]
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> bool {
    if old == 0 || old > new {
        return false;
    }
    if old == new {
        return proof.is_empty() && old_root == new_root;
    }
    // Step 1: when `old` is a power of two, the old root is the proof's implicit first node.
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    // Steps 2–3.
    let (mut fn_, mut sn) = (old - 1, new - 1);
    while fn_ % 2 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 4.
    let (mut fr, mut sr) = (*first, *first);
    // Step 5.
    for c in rest {
        if sn == 0 {
            return false;
        }
        if fn_ % 2 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fn_ % 2 == 0 {
                while fn_ % 2 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    // Step 6.
    fr == *old_root && sr == *new_root && sn == 0
}

/// Nodes held in a map by `(level, index)`: what a store returns for a computation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeMap(pub std::collections::HashMap<(u8, u64), Hash>);

impl NodeSource for NodeMap {
    fn node(&self, level: u8, index: u64) -> Option<Hash> {
        self.0.get(&(level, index)).copied()
    }
}

/// The nodes `compute` reads (sorted, without repeats): run a root or proof computation
/// against placeholders to learn which stored nodes to fetch, then run it again on them.
pub fn wanted<T>(
    compute: impl FnOnce(&dyn NodeSource) -> Result<T, TreeError>,
) -> Result<Vec<(u8, u64)>, TreeError> {
    struct Recorder(std::cell::RefCell<Vec<(u8, u64)>>);
    impl NodeSource for Recorder {
        fn node(&self, level: u8, index: u64) -> Option<Hash> {
            self.0.borrow_mut().push((level, index));
            Some([0; 32])
        }
    }
    let recorder = Recorder(std::cell::RefCell::new(Vec::new()));
    compute(&recorder)?;
    let mut positions = recorder.0.into_inner();
    positions.sort_unstable();
    positions.dedup();
    Ok(positions)
}

/// A tree of which a verifier holds only the leaves `[start, start + leaves.len())`, and was
/// handed the nodes `outside` that range. A node that covers any held leaf is always computed
/// from the leaves, never taken from `outside`, so a root computed through it binds every
/// held leaf at its position: a range of the log proven against a signed root.
#[derive(Debug, Clone, Copy)]
pub struct Partial<'a, S: NodeSource + ?Sized> {
    /// Nodes wholly outside the range.
    pub outside: &'a S,
    /// Index of the first held leaf.
    pub start: u64,
    /// The held leaf hashes, in order.
    pub leaves: &'a [Hash],
}

impl<S: NodeSource + ?Sized> NodeSource for Partial<'_, S> {
    fn node(&self, level: u8, index: u64) -> Option<Hash> {
        let lo = u128::from(index) << level;
        let hi = (u128::from(index) + 1) << level;
        let (start, end) = (
            u128::from(self.start),
            u128::from(self.start) + self.leaves.len() as u128,
        );
        if hi <= start || lo >= end {
            return self.outside.node(level, index);
        }
        if level == 0 {
            let i = usize::try_from(index.checked_sub(self.start)?).ok()?;
            return self.leaves.get(i).copied();
        }
        Some(node_hash(
            &self.node(level - 1, 2 * index)?,
            &self.node(level - 1, 2 * index + 1)?,
        ))
    }
}

/// The nodes outside leaves `[start, end)` that a holder of those leaves needs to compute
/// the root of the tree of `size` leaves (sorted, without repeats).
pub fn range_proof_nodes(start: u64, end: u64, size: u64) -> Result<Vec<(u8, u64)>, TreeError> {
    if start >= end || end > size {
        return Err(TreeError::OutOfRange(format!(
            "leaves {start}..{end} are not a non-empty range of a tree of {size}"
        )));
    }
    let len = usize::try_from(end - start)
        .map_err(|_| TreeError::OutOfRange("the range is too long".into()))?;
    let placeholders = vec![[0; 32]; len];
    wanted(|outside| {
        root(
            &Partial {
                outside,
                start,
                leaves: &placeholders,
            },
            size,
        )
    })
}

/// Perfect-subtree hashes kept in memory: `levels[l][i]` is `node(l, i)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
}

impl NodeSource for MemoryTree {
    fn node(&self, level: u8, index: u64) -> Option<Hash> {
        let i = usize::try_from(index).ok()?;
        self.levels.get(usize::from(level))?.get(i).copied()
    }
}

impl MemoryTree {
    /// An empty tree.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// How many leaves.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Appends a leaf hash; returns its index.
    pub fn push(&mut self, leaf: Hash) -> u64 {
        let index = self.size();
        // The left siblings a new leaf needs are always stored: nothing can be missing.
        let nodes = completed_nodes(self, index, leaf).unwrap_or_default();
        for (level, _, hash) in nodes {
            let level = usize::from(level);
            if self.levels.len() <= level {
                self.levels.push(Vec::new());
            }
            self.levels[level].push(hash);
        }
        index
    }

    /// The root of the first `size` leaves.
    pub fn root(&self, size: u64) -> Result<Hash, TreeError> {
        root(self, size)
    }
}

#[cfg(test)]
mod tests;
