//! Known answers from the RFC 6962 reference implementation's test data (the tree hashing of
//! RFC 9162 is unchanged), then properties over many tree sizes.

use proptest::prelude::*;

use super::*;

/// The eight reference leaves.
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

/// Roots of the trees of 0 to 8 of them.
const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_default())
        .collect()
}

fn h(s: &str) -> Hash {
    hex(s).try_into().unwrap_or_default()
}

fn reference() -> MemoryTree {
    let mut t = MemoryTree::new();
    for l in LEAVES {
        t.push(leaf_hash(&hex(l)));
    }
    t
}

#[test]
fn roots_match_the_reference_for_every_size() {
    let t = reference();
    assert_eq!(empty_root(), h(ROOTS[0]));
    for (size, want) in ROOTS.iter().enumerate() {
        assert_eq!(t.root(size as u64), Ok(h(want)), "size {size}");
    }
    assert!(matches!(t.root(9), Err(TreeError::MissingNode { .. })));
}

#[test]
fn inclusion_proofs_match_the_reference_and_verify() {
    let t = reference();
    // (leaf index, tree size, proof)
    let vectors: [(u64, u64, &[&str]); 4] = [
        (0, 1, &[]),
        (
            0,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            5,
            8,
            &[
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            3,
            &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
        ),
    ];
    for (index, size, want) in vectors {
        let want: Vec<Hash> = want.iter().map(|x| h(x)).collect();
        let proof = inclusion_proof(&t, index, size);
        assert_eq!(proof.as_ref(), Ok(&want), "leaf {index} of {size}");
        let leaf = leaf_hash(&hex(LEAVES[index as usize]));
        let root = h(ROOTS[size as usize]);
        assert!(verify_inclusion(index, size, &leaf, &want, &root));
    }
    assert!(inclusion_proof(&t, 8, 8).is_err());
}

#[test]
fn consistency_proofs_match_the_reference_and_verify() {
    let t = reference();
    let vectors: [(u64, u64, &[&str]); 4] = [
        (1, 1, &[]),
        (
            1,
            8,
            &[
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ],
        ),
        (
            6,
            8,
            &[
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ],
        ),
        (
            2,
            5,
            &[
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            ],
        ),
    ];
    for (old, new, want) in vectors {
        let want: Vec<Hash> = want.iter().map(|x| h(x)).collect();
        assert_eq!(
            consistency_proof(&t, old, new).as_ref(),
            Ok(&want),
            "{old} → {new}"
        );
        let (r1, r2) = (h(ROOTS[old as usize]), h(ROOTS[new as usize]));
        assert!(
            verify_consistency(old, new, &r1, &r2, &want),
            "{old} → {new}"
        );
    }
    assert!(consistency_proof(&t, 0, 8).is_err());
    assert!(consistency_proof(&t, 5, 4).is_err());
}

#[test]
fn tampering_with_any_part_fails_verification() {
    let t = reference();
    let leaf = leaf_hash(&hex(LEAVES[5]));
    let root = h(ROOTS[8]);
    let proof = inclusion_proof(&t, 5, 8).unwrap_or_default();
    assert!(verify_inclusion(5, 8, &leaf, &proof, &root));
    let mut bent = proof.clone();
    bent[1][0] ^= 1;
    assert!(
        !verify_inclusion(5, 8, &leaf, &bent, &root),
        "a changed node"
    );
    assert!(
        !verify_inclusion(4, 8, &leaf, &proof, &root),
        "another index"
    );
    assert!(
        !verify_inclusion(5, 8, &leaf, &proof, &h(ROOTS[7])),
        "another root"
    );
    assert!(
        !verify_inclusion(5, 6, &leaf, &proof, &root),
        "a size with another shape"
    );
    assert!(
        !verify_inclusion(5, 8, &leaf, &proof[..2], &root),
        "a short proof"
    );
    let mut long = proof.clone();
    long.push(root);
    assert!(!verify_inclusion(5, 8, &leaf, &long, &root), "a long proof");
    assert!(
        !verify_inclusion(8, 8, &leaf, &proof, &root),
        "out of range"
    );
    let c = consistency_proof(&t, 6, 8).unwrap_or_default();
    let (r6, r8) = (h(ROOTS[6]), h(ROOTS[8]));
    assert!(!verify_consistency(6, 8, &r8, &r8, &c), "a forked old root");
    assert!(!verify_consistency(6, 8, &r6, &r6, &c), "a forked new root");
    assert!(!verify_consistency(5, 8, &r6, &r8, &c), "another size");
    assert!(!verify_consistency(6, 8, &r6, &r8, &[]), "no proof");
    assert!(
        !verify_consistency(8, 8, &r6, &r8, &[]),
        "equal sizes, different roots"
    );
}

#[test]
fn a_computation_reads_few_nodes_and_runs_again_on_just_those() {
    let t = reference();
    let wanted = wanted(|src| inclusion_proof(src, 5, 8)).unwrap_or_default();
    // Leaf 4, the pair (6, 7) and the left half: three perfect subtrees.
    assert_eq!(wanted, vec![(0, 4), (1, 3), (2, 0)]);
    let nodes = NodeMap(
        wanted
            .iter()
            .filter_map(|&(l, i)| t.node(l, i).map(|h| ((l, i), h)))
            .collect(),
    );
    assert_eq!(inclusion_proof(&nodes, 5, 8), inclusion_proof(&t, 5, 8));
    let for_root = wanted_root(7);
    assert_eq!(for_root, vec![(0, 6), (1, 2), (2, 0)]);
}

fn wanted_root(size: u64) -> Vec<(u8, u64)> {
    wanted(|src| root(src, size)).unwrap_or_default()
}

/// A naive MTH (§2.1.1), straight from the definition, to check the stored-node one against.
fn naive_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n as u64) as usize;
            node_hash(&naive_root(&leaves[..k]), &naive_root(&leaves[k..]))
        }
    }
}

proptest! {
    // Each case checks every size up to n, every leaf and every pair of sizes: O(n³) proofs.
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn every_size_every_leaf_every_pair_of_sizes(n in 1u64..70, seed in any::<u8>()) {
        let leaves: Vec<Hash> = (0..n).map(|i| leaf_hash(&[seed, i as u8, (i >> 8) as u8])).collect();
        let mut t = MemoryTree::new();
        for l in &leaves {
            t.push(*l);
        }
        for size in 1..=n {
            let root = t.root(size).unwrap_or_default();
            prop_assert_eq!(root, naive_root(&leaves[..size as usize]));
            for i in 0..size {
                let proof = inclusion_proof(&t, i, size).unwrap_or_default();
                prop_assert!(verify_inclusion(i, size, &leaves[i as usize], &proof, &root));
            }
            for old in 1..=size {
                let proof = consistency_proof(&t, old, size).unwrap_or_default();
                let old_root = t.root(old).unwrap_or_default();
                prop_assert!(verify_consistency(old, size, &old_root, &root, &proof));
            }
        }
    }
}

/// The outside nodes of `[start, end)` in `t`, as a server would hand them out.
fn outside_nodes(t: &MemoryTree, start: u64, end: u64, size: u64) -> NodeMap {
    let positions = range_proof_nodes(start, end, size).unwrap_or_default();
    NodeMap(
        positions
            .iter()
            .filter_map(|&(l, i)| t.node(l, i).map(|h| ((l, i), h)))
            .collect(),
    )
}

#[test]
fn a_range_of_leaves_with_the_nodes_outside_it_gives_the_signed_root() {
    let t = reference();
    let leaves: Vec<Hash> = (0..8).filter_map(|i| t.node(0, i)).collect();
    // Leaves 3 and 4 of 7: leaf 2, the pair (0, 1), leaf 5 and leaf 6 around them.
    assert_eq!(
        range_proof_nodes(3, 5, 7),
        Ok(vec![(0, 2), (0, 5), (0, 6), (1, 0)])
    );
    let outside = outside_nodes(&t, 3, 5, 7);
    let held = Partial {
        outside: &outside,
        start: 3,
        leaves: &leaves[3..5],
    };
    assert_eq!(root(&held, 7), t.root(7));
    // A held leaf changed, or one moved, no longer gives the root.
    let mut changed = leaves[3..5].to_vec();
    changed[1][0] ^= 1;
    let bad = Partial {
        leaves: &changed,
        ..held
    };
    assert_ne!(root(&bad, 7), t.root(7));
    let shifted = Partial { start: 2, ..held };
    assert_ne!(root(&shifted, 7).ok(), t.root(7).ok());
    // A node covering a held leaf is never taken from outside, even if offered.
    let mut offered = outside.clone();
    offered.0.insert((1, 1), [7; 32]);
    offered.0.insert((3, 0), [7; 32]);
    let held = Partial {
        outside: &offered,
        ..held
    };
    assert_eq!(root(&held, 7), t.root(7));
    assert!(range_proof_nodes(5, 5, 7).is_err());
    assert!(range_proof_nodes(3, 8, 7).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn every_range_of_every_size_proves_its_root(n in 1u64..40, seed in any::<u8>()) {
        let leaves: Vec<Hash> = (0..n).map(|i| leaf_hash(&[seed, i as u8])).collect();
        let mut t = MemoryTree::new();
        for l in &leaves {
            t.push(*l);
        }
        for size in 1..=n {
            for start in 0..size {
                for end in start + 1..=size {
                    let outside = outside_nodes(&t, start, end, size);
                    // Only nodes wholly outside the range are handed out.
                    for (l, i) in outside.0.keys() {
                        let (lo, hi) = (i << l, (i + 1) << l);
                        prop_assert!(hi <= start || lo >= end);
                    }
                    let held = Partial {
                        outside: &outside,
                        start,
                        leaves: &leaves[start as usize..end as usize],
                    };
                    prop_assert_eq!(root(&held, size).ok(), t.root(size).ok());
                }
            }
        }
    }
}
