//! Durability as a property (style practice 11): kill -9 the writer mid-storm, reopen, and check that
//! every acknowledged write is there with its revision, that revisions are gap-free and monotonic, and
//! that a watch from revision 0 replays the whole history without a gap; reads at the revisions of
//! the last transactions before each crash check the same from a second reader.
//!
//! `harness = false`: this binary is both sides. Run plainly (as `cargo test` does) it is the checker;
//! it re-executes itself with `--child DIR` to get the writer process it can kill.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use skiff_store::{
    EmbeddedOptions, EmbeddedStore, EventKind, ListOptions, Op, Precondition, Revision, Store,
};

/// Concurrent writers in the child.
const WRITERS: usize = 32;
/// Acknowledgements to see before the kill: at least this many, plus a random share of as many again,
/// so the kill lands at a different point of the storm each run.
const ACKS_BEFORE_KILL: usize = 3000;
/// Storms on the same file: each reopens what the previous kill left behind.
const ROUNDS: usize = 3;
/// The last acknowledged transactions of each round also checked with reads at their revision.
const TAIL_CHECKED: usize = 64;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        // `cargo test -- --list` and test runners that enumerate tests: one test here.
        println!("kill9_mid_storm_loses_no_acknowledged_write: test");
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--child") {
        let dir = args.get(i + 1).expect("--child DIR ROUND");
        let round = args.get(i + 2).expect("--child DIR ROUND");
        child(Path::new(dir), round);
        return;
    }
    let started = Instant::now();
    parent();
    println!(
        "test kill9_mid_storm_loses_no_acknowledged_write ... ok ({:.1} s)",
        started.elapsed().as_secs_f64()
    );
}

/// The writer: many tasks creating keys (some in two-key transactions, some deleting what they made
/// before), printing `ACK <rev> <op> <key>...` only after `txn` returned Ok.
fn child(dir: &Path, round: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = Arc::new(
            EmbeddedStore::open(&dir.join("store.redb"), EmbeddedOptions::default()).unwrap(),
        );
        let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let (store, out) = (store.clone(), out.clone());
            let base = format!("/storm/{round}/{w}");
            tasks.push(tokio::spawn(async move {
                for n in 0u64.. {
                    let key = format!("{base}/{n}");
                    let (ops, line) = match n % 5 {
                        // A two-key transaction.
                        3 => {
                            let twin = format!("{base}/{n}t");
                            (
                                vec![create(&key), create(&twin)],
                                format!("PUT {key} {twin}"),
                            )
                        }
                        // Delete the key made just before (with a revision guard it must pass).
                        4 => {
                            let prev = format!("{base}/{}", n - 1);
                            let rev = store.get(&prev).await.unwrap().unwrap().mod_revision;
                            (
                                vec![Op::Delete {
                                    key: prev.clone(),
                                    precondition: Precondition::ModRevision(rev),
                                }],
                                format!("DEL {prev}"),
                            )
                        }
                        _ => (vec![create(&key)], format!("PUT {key}")),
                    };
                    let r = store.txn(ops).await.unwrap();
                    // The whole line in one write to the pipe, so a kill falls between lines;
                    // the parent still drops an unterminated last line.
                    let line = format!("ACK {} {line}\n", r.revision);
                    let mut out = out.lock().unwrap();
                    out.write_all(line.as_bytes()).unwrap();
                    out.flush().unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
}

fn create(key: &str) -> Op {
    Op::Put {
        key: key.to_string(),
        value: Bytes::from(key.to_string()),
        precondition: Precondition::MustNotExist,
    }
}

fn parent() {
    let dir = tempfile::tempdir().unwrap();
    let mut acks = Vec::new();
    for round in 0..ROUNDS {
        acks.extend(storm(dir.path(), round));
    }
    let acks: Vec<Ack> = acks.iter().filter_map(|l| Ack::parse(l)).collect();
    assert!(acks.len() >= ACKS_BEFORE_KILL * ROUNDS);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let checking = Instant::now();
    rt.block_on(check(dir.path(), &acks));
    eprintln!("checked in {:.1} s", checking.elapsed().as_secs_f64());
}

/// One writer process on `dir`, killed with SIGKILL mid-storm; returns the lines it acknowledged.
fn storm(dir: &Path, round: usize) -> Vec<String> {
    let jitter = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as usize
        % ACKS_BEFORE_KILL;
    let kill_at = ACKS_BEFORE_KILL + jitter;
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg("--child")
        .arg(dir)
        .arg(round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut acks = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while acks.len() < kill_at {
        assert!(
            Instant::now() < deadline,
            "the writer acknowledged only {} writes in 15 s",
            acks.len()
        );
        match read_line(&mut out) {
            Some(line) => acks.push(line),
            None => panic!("the writer exited early after {} acks", acks.len()),
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // Acknowledgements already in the pipe were made before the kill.
    while let Some(line) = read_line(&mut out) {
        acks.push(line);
    }
    eprintln!(
        "round {round}: killed after {} acknowledgements",
        acks.len()
    );
    acks
}

/// The next complete (newline-terminated) line; None at the end of the pipe. An unterminated
/// last line can only be a write cut by the kill, so it is not an acknowledgement.
fn read_line(out: &mut impl BufRead) -> Option<String> {
    let mut line = String::new();
    match out.read_line(&mut line) {
        Ok(n) if n > 0 && line.ends_with('\n') => {
            line.pop();
            Some(line)
        }
        _ => None,
    }
}

struct Ack {
    revision: Revision,
    delete: bool,
    keys: Vec<String>,
}

impl Ack {
    fn parse(line: &str) -> Option<Ack> {
        let mut parts = line.strip_prefix("ACK ")?.split(' ');
        let revision = parts.next()?.parse().ok()?;
        let delete = parts.next()? == "DEL";
        Some(Ack {
            revision,
            delete,
            keys: parts.map(str::to_string).collect(),
        })
    }
}

async fn check(dir: &Path, acks: &[Ack]) {
    let reopened = Instant::now();
    let store = EmbeddedStore::open(&dir.join("store.redb"), EmbeddedOptions::default()).unwrap();
    eprintln!(
        "reopened after kill -9 in {:?}; {} acknowledged transactions to check",
        reopened.elapsed(),
        acks.len()
    );
    let current = store.current_revision().await.unwrap();
    let max_acked = acks.iter().map(|a| a.revision).max().unwrap();
    assert!(
        current >= max_acked,
        "current {current} < acknowledged {max_acked}"
    );

    // Replay everything: revisions must be 2, 3, ... current with no gap, each once. A watch never
    // ends by itself and a revision may hold several events, so the replay cannot stop at the first
    // event of `current` (it once did, and the last transaction, when it had two keys, looked torn):
    // one more write is committed first, and the replay ends when its event arrives, which comes
    // after every event of every older revision.
    let sentinel = store.txn(vec![create("/after/crash")]).await.unwrap();
    assert_eq!(
        sentinel.revision,
        current + 1,
        "the store resumes at current + 1"
    );
    let replaying = Instant::now();
    let mut w = store.watch("", 0).await.unwrap();
    let mut by_revision: BTreeMap<Revision, Vec<(EventKind, String)>> = BTreeMap::new();
    let mut last = 1;
    loop {
        let e = tokio::time::timeout(Duration::from_secs(10), w.next())
            .await
            .expect("replay stalled")
            .unwrap()
            .unwrap();
        let rev = e.kv.mod_revision;
        if rev == sentinel.revision {
            assert_eq!(e.kv.key, "/after/crash");
            assert_eq!(last, current, "the replay reached the sentinel early");
            break;
        }
        if e.kind == EventKind::Put {
            // Every value the writer stored is its key; the log must give it back.
            assert_eq!(
                e.kv.value,
                e.kv.key.as_bytes(),
                "value of {} at {rev}",
                e.kv.key
            );
        }
        assert!(
            rev == last || rev == last + 1,
            "gap or reorder: {last} then {rev}"
        );
        last = rev;
        by_revision.entry(rev).or_default().push((e.kind, e.kv.key));
    }
    assert_eq!(
        by_revision.len() as i64,
        current - 1,
        "one revision per committed txn"
    );

    // Every acknowledged transaction is in the history at its revision, whole.
    for ack in acks {
        let events = by_revision
            .get(&ack.revision)
            .unwrap_or_else(|| panic!("acknowledged revision {} lost", ack.revision));
        let kind = if ack.delete {
            EventKind::Delete
        } else {
            EventKind::Put
        };
        let expect: Vec<_> = ack.keys.iter().map(|k| (kind, k.clone())).collect();
        assert_eq!(events, &expect, "revision {}", ack.revision);
    }

    // And the current state agrees: acknowledged creates not later deleted are present with their
    // revision; acknowledged deletes are absent.
    let deleted: std::collections::HashSet<_> = acks
        .iter()
        .filter(|a| a.delete)
        .flat_map(|a| a.keys.iter().cloned())
        .collect();
    let state: BTreeMap<String, (Revision, Revision)> = store
        .list("/storm/", ListOptions::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|kv| (kv.key, (kv.create_revision, kv.mod_revision)))
        .collect();
    let deleted_in_history: std::collections::HashSet<&str> = by_revision
        .values()
        .flatten()
        .filter(|(kind, _)| *kind == EventKind::Delete)
        .map(|(_, key)| key.as_str())
        .collect();
    for ack in acks.iter().filter(|a| !a.delete) {
        for key in &ack.keys {
            match state.get(key) {
                Some(revs) => assert_eq!(*revs, (ack.revision, ack.revision), "{key}"),
                None => assert!(
                    deleted_in_history.contains(key.as_str()),
                    "{key} acknowledged at {} is missing and was never deleted",
                    ack.revision
                ),
            }
        }
    }
    for key in &deleted {
        assert!(
            !state.contains_key(key),
            "{key} was deleted (acknowledged) but is present"
        );
    }
    assert_eq!(store.count("/storm/").await.unwrap(), state.len() as u64);

    // A second reader that shares nothing with the watch replay (reads at a past revision undo the
    // newer log entries over the current rows): at the revision of each of the last acknowledged
    // transactions before each kill, where a crash tail would show, each of its keys is in the state
    // a `list` at that revision returns, written by it (or, for a delete, gone).
    eprintln!(
        "replayed and checked the history in {:?}",
        replaying.elapsed()
    );
    let reading = Instant::now();
    let mut by_round: BTreeMap<&str, Vec<&Ack>> = BTreeMap::new();
    for ack in acks {
        let round = ack.keys[0].split('/').nth(2).unwrap();
        by_round.entry(round).or_default().push(ack);
    }
    for (round, mut round_acks) in by_round {
        round_acks.sort_by_key(|a| std::cmp::Reverse(a.revision));
        for ack in round_acks.into_iter().take(TAIL_CHECKED) {
            // Every key of one transaction is in its writer's directory.
            let key = &ack.keys[0];
            let writer_dir = &key[..=key.rfind('/').unwrap()];
            let page = store
                .list(
                    writer_dir,
                    ListOptions {
                        at_revision: Some(ack.revision),
                        ..ListOptions::default()
                    },
                )
                .await
                .unwrap();
            assert_eq!(page.revision, ack.revision);
            for key in &ack.keys {
                let found = page.items.iter().find(|kv| &kv.key == key);
                if ack.delete {
                    assert!(found.is_none(), "{key} present at {}", ack.revision);
                    continue;
                }
                let kv = found
                    .unwrap_or_else(|| panic!("round {round}: {key} absent at {}", ack.revision));
                assert_eq!(
                    (kv.create_revision, kv.mod_revision, &kv.value[..]),
                    (ack.revision, ack.revision, key.as_bytes()),
                    "{key} at {}",
                    ack.revision
                );
            }
        }
    }
    eprintln!(
        "read the crash tails at their revisions in {:?}",
        reading.elapsed()
    );
}
