//! `duet doctor`: read every file of the home, name what is damaged, and (on request) move it
//! aside. Nothing is ever deleted but the derived cache, which rebuilds itself.

use std::fs;
use std::path::{Path, PathBuf};

use duet_core::JournalId;

use crate::fsutil::{TEMP_PREFIX, create_private_dir};
use crate::volumes::{JournalFiles, content_hash};
use crate::{Home, StoreError};

/// One damaged file and what was done about it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Damaged {
    pub path: PathBuf,
    pub why: String,
    /// Where `--fix` moved it, if it did.
    pub moved_to: Option<PathBuf>,
}

/// What a check found.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Checkup {
    pub journals: usize,
    pub volumes: usize,
    pub files: usize,
    pub damaged: Vec<Damaged>,
    pub cache_cleared: bool,
}

/// Why a journal file cannot be used, or `None` when it reads.
fn file_problem(path: &Path, hash: &str) -> Option<String> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => return Some(format!("cannot be read: {e}")),
    };
    if bytes.is_empty() {
        return Some("it is empty".to_owned());
    }
    if content_hash(&bytes) != hash {
        return Some("its content does not match its name (truncated or damaged)".to_owned());
    }
    if let Err(e) = duet_core::load_bounded(&mut automerge::AutoCommit::new(), &bytes) {
        return Some(crate::volumes::unreadable_because(&e));
    }
    None
}

/// Check every journal file of `home`; with `fix`, move damaged ones into `damaged/` beside
/// the journals and clear the cache so every index is rebuilt from what remains.
pub fn checkup(home: &Home, fix: bool) -> Result<Checkup, StoreError> {
    home.check_private()?;
    home.config()?;
    let mut report = Checkup::default();
    let journals_dir = home.root().join("journals");
    let entries = match fs::read_dir(&journals_dir) {
        Ok(entries) => entries.flatten().collect::<Vec<_>>(),
        Err(_) => Vec::new(),
    };
    for entry in entries {
        let dir = entry.path();
        let Some(journal) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<JournalId>().ok())
        else {
            continue;
        };
        report.journals += 1;
        let files = JournalFiles::new(dir.clone(), journal);
        let listing = files.list()?;
        report.volumes += listing.volumes.len();
        for volume_files in listing.volumes.values() {
            for f in volume_files {
                report.files += 1;
                let path = dir.join(&f.name);
                if let Some(why) = file_problem(&path, &f.hash) {
                    report.damaged.push(Damaged {
                        path,
                        why,
                        moved_to: None,
                    });
                }
            }
        }
        // Anything else in a journal folder is not duet's: named, left where it is.
        for other in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = other.file_name().to_string_lossy().into_owned();
            let known = name.starts_with(TEMP_PREFIX)
                || name.starts_with(".lock.")
                || listing.volumes.values().flatten().any(|f| f.name == name);
            if !known {
                report.damaged.push(Damaged {
                    path: other.path(),
                    why: "not a duet file".to_owned(),
                    moved_to: None,
                });
            }
        }
    }
    if fix {
        for d in &mut report.damaged {
            let Some(journal) = d.path.parent().and_then(Path::file_name) else {
                continue;
            };
            let aside = home.root().join("damaged").join(journal);
            create_private_dir(&aside).map_err(|e| StoreError::Io {
                path: aside.clone(),
                source: e,
            })?;
            let target = aside.join(d.path.file_name().unwrap_or_default());
            fs::rename(&d.path, &target).map_err(|e| StoreError::Io {
                path: d.path.clone(),
                source: e,
            })?;
            d.moved_to = Some(target);
        }
        let cache = home.cache_dir();
        if cache.exists() {
            fs::remove_dir_all(&cache).map_err(|e| StoreError::Io {
                path: cache.clone(),
                source: e,
            })?;
        }
        report.cache_cleared = true;
    }
    Ok(report)
}
