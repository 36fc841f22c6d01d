//! `surety audit export` and `surety audit verify`: the audit log as a file an auditor can
//! check offline, with nothing but the file and the log's public key.
//!
//! An export is JSON Lines: a header, then every leaf in order (`{"leaf_index", "entry"}`,
//! the entry being the event exactly as the tree hashes it), then the signed checkpoint that
//! covers them all (`{"checkpoint": "<C2SP signed note>"}`). `verify` recomputes the RFC 9162
//! tree from the entries, opens each checkpoint with the given key, and compares roots.

use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use surety_core::merkle::{self, MemoryTree};
use surety_jose::note::{Checkpoint, NoteKey};

use crate::Globals;
use crate::output::say;

/// Format version of export files.
const FORMAT: u64 = 1;
/// Leaves fetched per request.
const BATCH: u64 = 1000;

/// The checkpoint text of a signed note (without verifying it: the exporter is not the
/// auditor).
fn checkpoint_of(note: &str) -> anyhow::Result<Checkpoint> {
    let split = note
        .rfind("\n\n")
        .ok_or_else(|| anyhow::anyhow!("the server's checkpoint is not a signed note"))?;
    Ok(Checkpoint::parse(&note[..=split])?)
}

/// Where a range of the log begins or ends: a leaf index, or an RFC 3339 time (the first leaf
/// at or after it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bound {
    /// A leaf index.
    Leaf(u64),
    /// A time.
    Time(time::OffsetDateTime),
}

impl std::str::FromStr for Bound {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(n) = s.parse() {
            return Ok(Self::Leaf(n));
        }
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .map(Self::Time)
            .map_err(|_| format!("`{s}` is neither a leaf index nor an RFC 3339 time"))
    }
}

/// The leaf index of `bound` in a log of `size` leaves. Times are found by bisection over
/// the leaves' `time_us`, which ascends in commit order (to within the append batching).
async fn leaf_of(
    client: &surety_sdk::AdminClient,
    bound: &Bound,
    size: u64,
) -> anyhow::Result<u64> {
    let at = match bound {
        Bound::Leaf(n) => return Ok((*n).min(size)),
        Bound::Time(t) => i64::try_from(t.unix_timestamp_nanos() / 1000)?,
    };
    let (mut lo, mut hi) = (0, size);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let page = client.audit_leaves(mid, mid + 1).await?;
        let time = page
            .leaves
            .first()
            .and_then(|l| l.entry["time_us"].as_i64())
            .ok_or_else(|| anyhow::anyhow!("leaf {mid} has no `time_us`"))?;
        if time < at {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Ok(lo)
}

/// What an export holds: the leaves `[start, end)` of a tree of `size`.
pub struct Written {
    pub start: u64,
    pub end: u64,
    pub size: u64,
}

/// `surety audit export`.
pub async fn export(
    g: &Globals,
    out: &Path,
    from: Option<Bound>,
    to: Option<Bound>,
) -> anyhow::Result<()> {
    let range = from.is_some() || to.is_some();
    let Written { start, end, size } = write_export(&g.client()?, out, from, to).await?;
    if range {
        say!(
            "events {start}..{end} (of {size}), the subtrees around them and the signed checkpoint written to {}",
            out.display()
        );
    } else {
        say!(
            "{size} events and their signed checkpoint written to {}",
            out.display()
        );
    }
    Ok(())
}

/// Writes the log up to a fresh signed checkpoint to `out`: all of it, or the leaves
/// `[from, to)` with the subtrees outside them, which prove the range against the same
/// signed root.
pub async fn write_export(
    client: &surety_sdk::AdminClient,
    out: &Path,
    from: Option<Bound>,
    to: Option<Bound>,
) -> anyhow::Result<Written> {
    let note = client.audit_checkpoint().await?;
    let checkpoint = checkpoint_of(&note)?;
    let size = checkpoint.size;
    let start = match &from {
        Some(b) => leaf_of(client, b, size).await?,
        None => 0,
    };
    let end = match &to {
        Some(b) => leaf_of(client, b, size).await?,
        None => size,
    };
    let range = from.is_some() || to.is_some();
    anyhow::ensure!(
        !range || start < end,
        "no events in that range (leaves {start}..{end} of {size})"
    );
    let file = std::fs::File::create(out)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))?;
    let mut w = BufWriter::new(file);
    let mut stored = std::collections::BTreeMap::new();
    if range {
        writeln!(
            w,
            "{}",
            json!({"surety_audit_export": FORMAT, "origin": checkpoint.origin, "size": size, "from": start, "to": end})
        )?;
        let proof = client.audit_range_proof(start, end, size).await?;
        writeln!(w, "{}", json!({ "range_nodes": proof.nodes }))?;
    } else {
        writeln!(
            w,
            "{}",
            json!({"surety_audit_export": FORMAT, "origin": checkpoint.origin, "size": size})
        )?;
        // Every stored checkpoint up to this one goes right after the last leaf it covers,
        // so that verify checks each, and the chain of `previous` lines between them.
        let mut after = 0;
        loop {
            let page = client.audit_checkpoints(after, size).await?;
            let Some(last) = page.checkpoints.last().map(|c| c.size) else {
                break;
            };
            for c in page.checkpoints {
                stored.insert(c.size, c.note);
            }
            after = last;
        }
        if let Some(n) = stored.get(&0) {
            writeln!(w, "{}", json!({ "checkpoint": n }))?;
        }
    }
    // The checkpoint of the export's size closes it, after the range's last leaf.
    stored.insert(end, note.clone());
    let mut at = start;
    while at < end {
        let batch_end = (at + BATCH).min(end);
        let page = client.audit_leaves(at, batch_end).await?;
        for (expected, leaf) in (at..batch_end).zip(&page.leaves) {
            anyhow::ensure!(
                leaf.leaf_index == expected,
                "the server skipped leaf {expected}"
            );
            writeln!(
                w,
                "{}",
                json!({"leaf_index": leaf.leaf_index, "entry": leaf.entry})
            )?;
            if let Some(n) = stored.get(&(leaf.leaf_index + 1)) {
                writeln!(w, "{}", json!({ "checkpoint": n }))?;
            }
        }
        anyhow::ensure!(
            page.leaves.len() as u64 == batch_end - at,
            "the server returned {} leaves for {at}..{batch_end}",
            page.leaves.len()
        );
        at = batch_end;
    }
    w.flush()?;
    Ok(Written { start, end, size })
}

pub async fn log_key(g: &Globals) -> anyhow::Result<()> {
    let client = g.client()?;
    let url = format!("{}/v1/audit/log-key", client.server());
    let response = reqwest::get(&url).await?;
    anyhow::ensure!(
        response.status().is_success(),
        "{url}: {}",
        response.text().await.unwrap_or_default()
    );
    say!("{}", response.text().await?.trim());
    Ok(())
}

/// A leaf line, with its entry kept as written.
#[derive(serde::Deserialize)]
struct RawLeaf<'a> {
    leaf_index: u64,
    #[serde(borrow)]
    entry: &'a serde_json::value::RawValue,
}

/// What a verification found.
#[derive(Debug, serde::Serialize)]
pub struct Verified {
    /// Index of the first event (0 unless the export is a range).
    pub first: u64,
    pub events: u64,
    pub checkpoints: usize,
    pub root: String,
}

/// Verifies the export `file` against `key`: a note verifier key or a JWKS (see
/// [`verify`]).
pub fn verify_export(file: &Path, key: &str) -> anyhow::Result<Verified> {
    let keys = verifier_keys(key.trim(), file)?;
    verify_file(file, &keys)
}

/// Verifies an export against the verifier key `key`; the error names the first line at
/// fault.
fn verify_file(file: &Path, keys: &[NoteKey]) -> anyhow::Result<Verified> {
    let handle =
        std::fs::File::open(file).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    // A progress bar on stderr, for long files read at a terminal (hidden otherwise).
    let total = handle.metadata().map(|m| m.len()).unwrap_or(0);
    let progress = indicatif::ProgressBar::new(total);
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "verifying {bar:40} {bytes}/{total_bytes} ({eta} left)",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let result = verify_reader(std::io::BufReader::new(progress.wrap_read(handle)), keys);
    progress.finish_and_clear();
    result
}

/// What a verifier holds: the whole log from its first leaf, or one range of it with the
/// subtrees outside the range.
enum Held {
    Full(MemoryTree),
    Range {
        from: u64,
        to: u64,
        outside: Option<merkle::NodeMap>,
        leaves: Vec<merkle::Hash>,
    },
}

impl Held {
    /// Leaves read so far, counted from the log's start.
    fn next_index(&self) -> u64 {
        match self {
            Self::Full(tree) => tree.size(),
            Self::Range { from, leaves, .. } => from + leaves.len() as u64,
        }
    }

    fn push(&mut self, leaf: merkle::Hash) {
        match self {
            Self::Full(tree) => {
                tree.push(leaf);
            }
            Self::Range { leaves, .. } => leaves.push(leaf),
        }
    }

    /// The root of the first `size` leaves of the log.
    fn root(&self, no: usize, size: u64) -> anyhow::Result<merkle::Hash> {
        match self {
            Self::Full(tree) => Ok(tree.root(size)?),
            Self::Range {
                from,
                to,
                outside,
                leaves,
            } => {
                let outside = outside.as_ref().ok_or_else(|| {
                    anyhow::anyhow!(
                        "line {no}: a range export needs its `range_nodes` before the checkpoint"
                    )
                })?;
                anyhow::ensure!(
                    from + leaves.len() as u64 == *to && size >= *to,
                    "line {no}: the checkpoint covers {size} events, but the range {from}..{to} is not all there before it: events were removed"
                );
                let held = merkle::Partial {
                    outside,
                    start: *from,
                    leaves,
                };
                merkle::root(&held, size).map_err(|e| {
                    anyhow::anyhow!("line {no}: the subtrees around the range do not fit it in a tree of {size} ({e}): the range was moved or its `range_nodes` altered")
                })
            }
        }
    }
}

fn range_nodes(no: usize, value: &Value) -> anyhow::Result<merkle::NodeMap> {
    let bad = || anyhow::anyhow!("line {no}: malformed `range_nodes`");
    let mut map = merkle::NodeMap::default();
    for node in value.as_array().ok_or_else(bad)? {
        let level = node["level"]
            .as_u64()
            .and_then(|l| u8::try_from(l).ok())
            .ok_or_else(bad)?;
        let index = node["index"].as_u64().ok_or_else(bad)?;
        let hash = node["hash"].as_str().ok_or_else(bad)?;
        use base64::Engine as _;
        let hash: merkle::Hash = base64::engine::general_purpose::STANDARD
            .decode(hash)
            .ok()
            .and_then(|h| h.try_into().ok())
            .ok_or_else(bad)?;
        map.0.insert((level, index), hash);
    }
    Ok(map)
}

fn verify_reader(reader: impl BufRead, keys: &[NoteKey]) -> anyhow::Result<Verified> {
    let name = keys.first().map(|k| k.name.clone()).unwrap_or_default();
    let mut held = Held::Full(MemoryTree::new());
    let mut checkpoints = 0;
    let mut covered = 0;
    let mut last_root = merkle::empty_root();
    for (n, line) in reader.lines().enumerate() {
        let no = n + 1;
        let line = line?;
        // Leaves, the bulk of a file, are hashed as written: the entry's text is what the
        // tree committed to, so any other text — altered, or merely re-encoded — fails.
        if n > 0
            && let Ok(leaf) = serde_json::from_str::<RawLeaf<'_>>(&line)
        {
            let expected = held.next_index();
            anyhow::ensure!(
                leaf.leaf_index == expected,
                "line {no}: leaf {} where leaf {expected} was expected: an event is missing, repeated or out of order",
                leaf.leaf_index,
            );
            if let Held::Range { to, .. } = &held {
                anyhow::ensure!(
                    leaf.leaf_index < *to,
                    "line {no}: leaf {} is beyond the range the export names (up to {to})",
                    leaf.leaf_index
                );
            }
            anyhow::ensure!(
                leaf.entry.get().starts_with('{'),
                "line {no}: the leaf's entry is not an object"
            );
            held.push(merkle::leaf_hash(leaf.entry.get().as_bytes()));
            continue;
        }
        let value: Value = serde_json::from_str(&line)
            .map_err(|e| anyhow::anyhow!("line {no}: not JSON ({e})"))?;
        if n == 0 {
            anyhow::ensure!(
                value["surety_audit_export"] == FORMAT,
                "line 1: not a Surety audit export (format {FORMAT})"
            );
            match (value["from"].as_u64(), value["to"].as_u64()) {
                (None, None) if value.get("from").is_none() && value.get("to").is_none() => {}
                (Some(from), Some(to)) if from < to => {
                    held = Held::Range {
                        from,
                        to,
                        outside: None,
                        leaves: Vec::new(),
                    };
                }
                _ => anyhow::bail!("line 1: `from` and `to` must name a non-empty range of leaves"),
            }
            continue;
        }
        if let Some(nodes) = value.get("range_nodes") {
            match &mut held {
                Held::Range {
                    outside, leaves, ..
                } if outside.is_none() && leaves.is_empty() => {
                    *outside = Some(range_nodes(no, nodes)?);
                }
                _ => anyhow::bail!(
                    "line {no}: `range_nodes` belong once, right after the header of a range export"
                ),
            }
            continue;
        }
        if let Some(note) = value.get("checkpoint").and_then(Value::as_str) {
            let text = surety_jose::note::open(note, keys).map_err(|_| {
                let names: Vec<String> = keys.iter().map(NoteKey::vkey).collect();
                anyhow::anyhow!(
                    "line {no}: the checkpoint is not signed by the key {} (forged, or altered)",
                    names.join(" or ")
                )
            })?;
            let cp = Checkpoint::parse(text)
                .map_err(|e| anyhow::anyhow!("line {no}: not a checkpoint: {e}"))?;
            anyhow::ensure!(
                cp.origin == name,
                "line {no}: the checkpoint is of log `{}`, the key of `{name}`",
                cp.origin,
            );
            if let Held::Full(tree) = &held {
                anyhow::ensure!(
                    cp.size <= tree.size(),
                    "line {no}: the checkpoint covers {} events, but only {} come before it: events were removed",
                    cp.size,
                    tree.size()
                );
                // `previous <size> <root>`: the checkpoint before it must be of this same
                // log. (A range export holds too little of the log to recompute it.)
                for ext in &cp.extensions {
                    let Some(prev) = ext.strip_prefix("previous ") else {
                        continue;
                    };
                    let (size, root) = prev
                        .split_once(' ')
                        .ok_or_else(|| anyhow::anyhow!("line {no}: a malformed `previous` line"))?;
                    let size: u64 = size
                        .parse()
                        .map_err(|_| anyhow::anyhow!("line {no}: a malformed `previous` line"))?;
                    anyhow::ensure!(
                        size <= cp.size
                            && tree.size() >= size
                            && base64_std(&tree.root(size)?) == root,
                        "line {no}: the previous checkpoint it names ({size} events) is not of this log: the log was forked or rewritten"
                    );
                }
            }
            let root = held.root(no, cp.size)?;
            anyhow::ensure!(
                root == cp.root,
                "line {no}: the events do not hash to the signed root of the first {} events: an entry was altered, removed, added or reordered",
                cp.size
            );
            checkpoints += 1;
            covered = held.next_index();
            last_root = root;
            continue;
        }
        anyhow::bail!("line {no}: neither a leaf (`leaf_index`, `entry`) nor a checkpoint");
    }
    anyhow::ensure!(checkpoints > 0, "the export holds no signed checkpoint");
    let read = held.next_index();
    anyhow::ensure!(
        covered == read,
        "{} events after the last checkpoint are covered by no signature",
        read - covered
    );
    let (first, events) = match &held {
        Held::Full(tree) => (0, tree.size()),
        Held::Range { from, leaves, .. } => (*from, leaves.len() as u64),
    };
    Ok(Verified {
        first,
        events,
        checkpoints,
        root: merkle_hex(&last_root),
    })
}

fn base64_std(h: &merkle::Hash) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(h)
}

fn merkle_hex(h: &merkle::Hash) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn verify(
    g: &Globals,
    file: &Path,
    key: Option<String>,
    key_file: Option<PathBuf>,
) -> anyhow::Result<()> {
    let read =
        |f: &Path| std::fs::read_to_string(f).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()));
    let text = match (key, key_file) {
        // `--key` takes the key itself, or a file holding it.
        (Some(k), None) if Path::new(&k).is_file() => read(Path::new(&k))?,
        (Some(k), None) => k,
        (None, Some(f)) => read(&f)?,
        _ => anyhow::bail!(
            "give the log's verifier key with --key or --key-file: the note key from GET /v1/audit/log-key, or the organisation's JWKS, obtained independently of the export"
        ),
    };
    let verified = verify_export(file, &text)?;
    if g.json {
        return crate::output::json(&verified);
    }
    let range = if verified.first > 0 {
        format!(
            " (leaves {}..{})",
            verified.first,
            verified.first + verified.events
        )
    } else {
        String::new()
    };
    say!(
        "verified: {} events{range}, {} signed checkpoint(s), root {}",
        verified.events,
        verified.checkpoints,
        verified.root
    );
    Ok(())
}

/// The keys to check checkpoints with: a C2SP verifier key (`name+id+key`), or a JWKS (the
/// organisation's `jwks_uri`, `/jwks`, or one JWK) whose Ed25519 keys are taken as note
/// keys of the log the export names in its header. Every Ed25519 key of the set may have
/// signed a checkpoint (keys rotate); other keys cannot sign checkpoints and are skipped.
fn verifier_keys(text: &str, export: &Path) -> anyhow::Result<Vec<NoteKey>> {
    if !text.starts_with('{') {
        return Ok(vec![NoteKey::parse(text)?]);
    }
    let set: Value =
        serde_json::from_str(text).map_err(|e| anyhow::anyhow!("the key is not JSON: {e}"))?;
    let jwks: Vec<&Value> = match set.get("keys").and_then(Value::as_array) {
        Some(keys) => keys.iter().collect(),
        None => vec![&set],
    };
    let first = std::io::BufReader::new(
        std::fs::File::open(export).map_err(|e| anyhow::anyhow!("{}: {e}", export.display()))?,
    )
    .lines()
    .next()
    .transpose()?
    .unwrap_or_default();
    let header: Value = serde_json::from_str(&first)
        .map_err(|_| anyhow::anyhow!("line 1: not a Surety audit export"))?;
    let origin = header["origin"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("line 1: the export names no log (`origin`)"))?;
    let keys: Vec<NoteKey> = jwks
        .into_iter()
        .filter_map(|jwk| surety_jose::PublicJwk::from_json(jwk).ok())
        .filter_map(|jwk| NoteKey::from_jwk(origin, &jwk).ok())
        .collect();
    anyhow::ensure!(
        !keys.is_empty(),
        "the key set holds no Ed25519 key: checkpoints are signed with one"
    );
    Ok(keys)
}

/// What `surety bench audit-verify` measured.
#[derive(Debug, serde::Serialize)]
pub struct VerifyBench {
    events: u64,
    file_bytes: u64,
    seconds: f64,
    events_per_second: f64,
}

/// Writes a synthetic export of `events` event-sized leaves, signed by a throw-away key, and
/// times `verify` on it (the file is deleted afterwards).
pub fn bench_verify(events: u64) -> anyhow::Result<VerifyBench> {
    let dir = std::env::temp_dir().join(format!(
        "surety-verify-bench-{}",
        surety_jose::random_b64(8)?
    ));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("export.jsonl");
    let key = surety_jose::PrivateJwk::generate(surety_jose::KeyAlg::EdDSA)?;
    let name = "bench.example/audit";
    let mut tree = MemoryTree::new();
    {
        let mut w = BufWriter::new(std::fs::File::create(&file)?);
        writeln!(
            w,
            "{}",
            json!({"surety_audit_export": FORMAT, "origin": name, "size": events})
        )?;
        for i in 0..events {
            // About the size of a decision event.
            let entry = json!({
                "v": 1, "schema": 1, "id": format!("evt_{i:032x}"), "time_us": 1_764_331_200_000_000_i64 + i as i64,
                "kind": "decision.made", "actor": "system", "target": "payments.transfer",
                "agent": "agt_0190c0de00007000800000000000abcd", "human": "hum_0190c0de00007000800000000000abcd",
                "details": {"decision": "allow", "policy_ids": ["permit-in-scope"], "policy_version": 3,
                            "arguments": {"amount": i % 5000, "currency": "EUR"}, "reasons": []},
            });
            let text = surety_core::canonical::to_string(&entry);
            tree.push(merkle::leaf_hash(text.as_bytes()));
            writeln!(w, "{{\"leaf_index\":{i},\"entry\":{text}}}")?;
        }
        let cp = Checkpoint {
            origin: name.into(),
            size: events,
            root: tree.root(events)?,
            extensions: vec!["time 0".into()],
        };
        let note = surety_jose::note::sign(&cp.to_text(), name, &key)?;
        writeln!(w, "{}", json!({ "checkpoint": note }))?;
        w.flush()?;
    }
    let vkey = NoteKey::from_jwk(name, key.public())?;
    let bytes = std::fs::metadata(&file)?.len();
    let started = std::time::Instant::now();
    let verified = verify_file(&file, std::slice::from_ref(&vkey))?;
    let seconds = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&dir);
    anyhow::ensure!(
        verified.events == events,
        "verified {} of {events}",
        verified.events
    );
    Ok(VerifyBench {
        events,
        file_bytes: bytes,
        seconds,
        events_per_second: events as f64 / seconds,
    })
}
