//! Crash-safe file writes: temp file, fsync, rename, fsync the directory.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Mutex;

use duet_core::SeededRng;

/// Temp files start with this so listings can skip them.
pub const TEMP_PREFIX: &str = ".tmp.";

/// Set by [`seed_ids`]: the generator behind [`random_bytes`] for this process.
static SEEDED: Mutex<Option<SeededRng>> = Mutex::new(None);

/// Make every id this process creates (journal, volume and item ids, Automerge actors)
/// come from `seed`, so a test can show real ids in its snapshots (`DUET_SEED`). Keys,
/// pairing secrets and temp file names stay random whatever the seed.
pub fn seed_ids(seed: u64) {
    *SEEDED.lock().unwrap_or_else(|e| e.into_inner()) = Some(SeededRng::new(seed));
}

/// Random bytes for ids: from the operating system, or from the seed given to [`seed_ids`].
pub fn random_bytes<const N: usize>() -> [u8; N] {
    if let Some(rng) = SEEDED.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        return rng.bytes();
    }
    secret_bytes()
}

/// Random bytes from the operating system, never seeded: keys and unguessable names.
pub fn secret_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).expect("the operating system's random source failed");
    buf
}

fn temp_name() -> String {
    let r: [u8; 8] = secret_bytes();
    format!(
        "{TEMP_PREFIX}{}",
        r.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// Write `bytes` to `dir/name` so that after a crash the file is either
/// absent or complete. `mode` sets the permission bits of a new file.
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> io::Result<()> {
    write_atomic_inner(dir, name, bytes, mode, Durable::Whole)
}

/// Like [`write_atomic`], except that the new name is made durable only by a later
/// [`sync_dir`] of `dir`: many files written together then cost one directory sync, not one
/// each. Until then a crash may lose the file (never leave it half-written).
pub fn write_atomic_sync_dir_later(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    mode: u32,
) -> io::Result<()> {
    write_atomic_inner(dir, name, bytes, mode, Durable::ContentsOnly)
}

/// How much of an atomic write is synced before it returns.
#[derive(Clone, Copy, PartialEq)]
enum Durable {
    /// The contents and the directory entry.
    Whole,
    /// The contents; the directory is synced by the caller later.
    ContentsOnly,
    /// Nothing: a cache that may vanish in a power cut.
    Not,
    /// Nothing, and an older file swapped out rather than renamed over: a cache its reader
    /// checks and rebuilds, which may be found empty after a power cut.
    Checked,
}

/// Like [`write_atomic`] without the fsyncs, for derived caches that can be
/// rebuilt: never half-written, but may vanish in a power cut.
pub fn write_cache(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    write_atomic_inner(dir, name, bytes, 0o600, Durable::Not)
}

/// Like [`write_cache`], for a cache whose reader rebuilds it when it does not decode whole
/// (the manifest and search files of the index): a file already there is swapped with
/// the new one and then removed, where [`write_cache`] renames over it. Renaming a file over
/// another makes ext4 allocate its blocks and start writing it out inside the rename
/// (`auto_da_alloc`, there so that an editor's save survives a power cut whole), which the
/// renaming process pays for; a swapped file is left to the usual writeback. Measured here,
/// swapping a 67 KB file into place took 40-50 µs against 160-200 µs renamed over, and the
/// manifest of a journal of 100,000 items is that size and is rewritten by every `duet write`.
/// The price: after a power cut the file may be found empty, and is rebuilt.
pub fn write_checked_cache(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    write_atomic_inner(dir, name, bytes, 0o600, Durable::Checked)
}

fn write_atomic_inner(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    mode: u32,
    durable: Durable,
) -> io::Result<()> {
    write_atomic_from(dir, name, mode, durable, |file| file.write_all(bytes))
}

/// Like [`write_atomic`], with the contents written by `fill` as they come (through a
/// buffer), so a big file never has to be held in memory whole. When `fill` fails nothing is
/// left behind and an earlier `dir/name` stays as it was.
pub fn write_atomic_with<E: From<io::Error>>(
    dir: &Path,
    name: &str,
    mode: u32,
    fill: impl FnOnce(&mut dyn Write) -> Result<(), E>,
) -> Result<(), E> {
    let mut failed = None;
    let written = write_atomic_from(dir, name, mode, Durable::Whole, |file| {
        let mut buffered = io::BufWriter::with_capacity(64 * 1024, file);
        if let Err(e) = fill(&mut buffered) {
            failed = Some(e);
            return Err(io::Error::other("not written"));
        }
        buffered.flush()
    });
    match (failed, written) {
        (Some(e), _) => Err(e),
        (None, r) => r.map_err(E::from),
    }
}

fn write_atomic_from(
    dir: &Path,
    name: &str,
    mode: u32,
    durable: Durable,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> io::Result<()> {
    let tmp = dir.join(temp_name());
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        fill(&mut file)?;
        if matches!(durable, Durable::Whole | Durable::ContentsOnly) {
            file.sync_all()?;
        }
        drop(file);
        let target = dir.join(name);
        if durable == Durable::Checked && swapped(&tmp, &target) {
            // `tmp` now holds the old contents.
            let _ = fs::remove_file(&tmp);
            return Ok(());
        }
        fs::rename(&tmp, target)?;
        if durable == Durable::Whole {
            sync_dir(dir)?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Swaps `tmp` and `target` in one step (`renameat2` with `RENAME_EXCHANGE`). `false` when
/// they were not swapped: no `target` yet, or a system or file system that cannot swap.
#[cfg(target_os = "linux")]
fn swapped(tmp: &Path, target: &Path) -> bool {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    renameat_with(CWD, tmp, CWD, target, RenameFlags::EXCHANGE).is_ok()
}

#[cfg(not(target_os = "linux"))]
fn swapped(_tmp: &Path, _target: &Path) -> bool {
    false
}

/// How many files [`in_parallel`] writes at once: a synced write spends most of its time
/// waiting for the disk, and several waits overlap. On the first sync of 100,000 items (391
/// volumes, each a snapshot and a signature file), storing took 522-759 ms with one writer and
/// 232-443 ms with eight (three runs each); 391 files of 64 KB alone, 90 ms and 37 ms.
pub const PARALLEL_WRITES: usize = 8;

/// Runs `f` on every item, on up to [`PARALLEL_WRITES`] threads, and returns the first error
/// (the items not yet started are then left alone).
pub fn in_parallel<T: Send, E: Send>(
    items: Vec<T>,
    f: impl Fn(T) -> Result<(), E> + Sync,
) -> Result<(), E> {
    let threads = PARALLEL_WRITES.min(items.len());
    if threads <= 1 {
        return items.into_iter().try_for_each(f);
    }
    let queue = std::sync::Mutex::new(items.into_iter());
    let failed = std::sync::Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let next = match queue.lock() {
                        Ok(mut queue) => queue.next(),
                        Err(_) => None,
                    };
                    let Some(item) = next else { break };
                    if let Err(e) = f(item) {
                        if let Ok(mut queue) = queue.lock() {
                            queue.by_ref().for_each(drop);
                        }
                        if let Ok(mut failed) = failed.lock() {
                            failed.get_or_insert(e);
                        }
                        break;
                    }
                }
            });
        }
    });
    match failed.into_inner() {
        Ok(Some(e)) => Err(e),
        _ => Ok(()),
    }
}

pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Create a directory (and parents) with owner-only permissions.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Remove temp files older than an hour: left behind by a process that was killed.
pub fn sweep_temp_files(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name.to_string_lossy().starts_with(TEMP_PREFIX) {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() > 3600);
        if old {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_parallel_writes_every_file_and_stops_at_the_first_error() {
        let dir = std::env::temp_dir().join(format!("duet-in-parallel-{}", std::process::id()));
        create_private_dir(&dir).unwrap();
        let names: Vec<String> = (0..40).map(|n| format!("f{n}")).collect();
        in_parallel(names.clone(), |name| {
            write_atomic_sync_dir_later(&dir, &name, name.as_bytes(), 0o600)
        })
        .unwrap();
        for name in &names {
            assert_eq!(fs::read(dir.join(name)).unwrap(), name.as_bytes());
        }
        // One item fails: that error comes back, and the queue is not run to its end.
        let ran = std::sync::atomic::AtomicUsize::new(0);
        let got = in_parallel((0..1000).collect(), |n: usize| {
            ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if n == 3 {
                return Err(format!("item {n}"));
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
            Ok(())
        });
        assert_eq!(got, Err("item 3".to_string()));
        assert!(ran.load(std::sync::atomic::Ordering::SeqCst) < 1000);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_checked_cache_replaces_the_file_whole_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let listing = || {
            let mut names: Vec<String> = fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        // No file yet: it is made (the swap has nothing to swap with).
        write_checked_cache(dir.path(), "m", b"first").unwrap();
        assert_eq!(fs::read(dir.path().join("m")).unwrap(), b"first");
        // Replaced, longer and then shorter: the new contents whole, the old file gone.
        write_checked_cache(dir.path(), "m", &[7u8; 70_000]).unwrap();
        assert_eq!(fs::read(dir.path().join("m")).unwrap(), vec![7u8; 70_000]);
        write_checked_cache(dir.path(), "m", b"third").unwrap();
        assert_eq!(fs::read(dir.path().join("m")).unwrap(), b"third");
        assert_eq!(listing(), ["m"]);
        // A file open while it is replaced keeps reading what it opened.
        let mut open = File::open(dir.path().join("m")).unwrap();
        write_checked_cache(dir.path(), "m", b"fourth").unwrap();
        let mut seen = String::new();
        io::Read::read_to_string(&mut open, &mut seen).unwrap();
        assert_eq!(seen, "third");
        assert_eq!(fs::read(dir.path().join("m")).unwrap(), b"fourth");
        assert_eq!(listing(), ["m"]);
    }
}
