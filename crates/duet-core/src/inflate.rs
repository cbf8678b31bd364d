//! How much memory Automerge would inflate a stored document or change into, counted before it
//! does.
//!
//! Automerge's storage format may DEFLATE-compress whole changes and single columns, and
//! Automerge inflates them in full when it loads them, with no bound: a one-megabyte snapshot
//! can ask for a gigabyte. So every byte string that comes from outside this process (a file on
//! disk, a snapshot or a change from the partner) is walked first with the same grammar
//! Automerge parses, every compressed part is inflated into nothing with a running count, and
//! the walk stops as soon as the count passes the bound. It needs no memory of its own; the
//! bytes are only handed to Automerge when the total is known to be within [`MAX_INFLATED`].
//!
//! The walk follows Automerge's parser (`storage/chunk.rs`, `document.rs`, `change.rs`,
//! `bundle/storage.rs` of automerge 0.12). Where the walk cannot read a chunk, Automerge
//! cannot either: it fails at the same point, before it inflates anything behind it, so what
//! the walk counted up to there is all Automerge could inflate.

/// The most a stored document, a set of changes or one sync message may inflate to: 256 MiB.
/// A full volume of 256 entries at the 1 MiB body limit is the largest honest volume.
pub const MAX_INFLATED: u64 = 256 * 1024 * 1024;

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const DOCUMENT: u8 = 0;
const CHANGE: u8 = 1;
const COMPRESSED: u8 = 2;
const BUNDLE: u8 = 3;
/// Bit 3 of a column specification: the column's data is DEFLATE-compressed.
const DEFLATE_BIT: u32 = 0b1000;

/// The bytes would inflate past the bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("it would expand to more than {} MiB in memory, over duet's bound", .limit / (1024 * 1024))]
pub struct TooLarge {
    /// The bound that applied.
    pub limit: u64,
}

/// Checks that `bytes` (one or more Automerge chunks, as given to `load_incremental`) inflate
/// to at most `limit` bytes. Returns the size they inflate to as far as Automerge could read.
pub fn check(bytes: &[u8], limit: u64) -> Result<u64, TooLarge> {
    let mut meter = Meter { total: 0, limit };
    let mut rest = bytes;
    while !rest.is_empty() {
        match chunk(rest, &mut meter)? {
            Some(next) => rest = next,
            None => break,
        }
    }
    Ok(meter.total)
}

/// The chunks of `bytes` (each its magic, checksum, type, length and data), split where
/// Automerge's parser splits them; `None` if what is left somewhere is not a whole chunk.
pub fn split_chunks(bytes: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (_, _, after) = chunk_header(rest)?;
        out.push(&rest[..rest.len() - after.len()]);
        rest = after;
    }
    Some(out)
}

/// One chunk's header, as Automerge reads it: its type, its data and the bytes after it.
/// `None` where Automerge would stop.
fn chunk_header(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let mut cur = Cursor(bytes);
    if cur.take(4)? != MAGIC {
        return None;
    }
    let _checksum = cur.take(4)?;
    let kind = cur.take(1)?[0];
    let len = cur.uleb()?;
    let data = cur.take(len)?;
    Some((kind, data, cur.0))
}

/// Checks each chunk list of a sync message, together, against `limit`.
pub fn check_all<'a>(
    parts: impl IntoIterator<Item = &'a [u8]>,
    limit: u64,
) -> Result<u64, TooLarge> {
    let mut left = limit;
    let mut total = 0;
    for part in parts {
        let size = check(part, left)?;
        total += size;
        left -= size;
    }
    Ok(total)
}

struct Meter {
    total: u64,
    limit: u64,
}

impl Meter {
    fn add(&mut self, n: u64) -> Result<(), TooLarge> {
        self.total = self.total.saturating_add(n);
        if self.total > self.limit {
            Err(TooLarge { limit: self.limit })
        } else {
            Ok(())
        }
    }

    /// Inflates a DEFLATE stream into nothing, counting, and stops once over the bound. One
    /// inflater and one buffer per thread serve every column: a new decoder per column (a
    /// snapshot has dozens) allocated and zeroed its window each time, which made this check
    /// cost more than Automerge's own inflating of the same columns.
    fn inflate(&mut self, compressed: &[u8]) -> Result<(), TooLarge> {
        use flate2::{Decompress, FlushDecompress, Status};
        thread_local! {
            static INFLATER: std::cell::RefCell<Option<(Decompress, Vec<u8>)>> =
                const { std::cell::RefCell::new(None) };
        }
        INFLATER.with_borrow_mut(|slot| {
            let (inflater, out) =
                slot.get_or_insert_with(|| (Decompress::new(false), vec![0; 32 * 1024]));
            inflater.reset(false);
            let mut input = compressed;
            loop {
                let (was_in, was_out) = (inflater.total_in(), inflater.total_out());
                let status = inflater.decompress(input, out, FlushDecompress::None);
                let used = (inflater.total_in() - was_in) as usize;
                let made = inflater.total_out() - was_out;
                input = &input[used..];
                self.add(made)?;
                // The end of the stream, no progress (it is cut short), or not DEFLATE: Automerge
                // fails at the same point, and what came out before counts.
                match status {
                    Ok(Status::Ok) if used > 0 || made > 0 => {}
                    _ => return Ok(()),
                }
            }
        })
    }
}

/// A cursor over a byte slice with Automerge's primitive readers. `None` means "Automerge
/// cannot read this either".
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: u64) -> Option<&'a [u8]> {
        let n = usize::try_from(n).ok()?;
        if n > self.0.len() {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    /// Unsigned LEB128 as Automerge reads it: at most ten bytes, no overflow.
    fn uleb(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for i in 0..10 {
            let byte = *self.0.first()?;
            self.0 = &self.0[1..];
            let low = u64::from(byte & 0x7f);
            if i == 9 && low > 1 {
                return None;
            }
            value |= low << (7 * i);
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    /// A length-prefixed list of `size`-byte items (change hashes).
    fn fixed_list(&mut self, size: u64) -> Option<()> {
        let count = self.uleb()?;
        self.take(count.checked_mul(size)?).map(|_| ())
    }

    /// A length-prefixed list of length-prefixed byte strings (actor ids).
    fn actors(&mut self) -> Option<()> {
        let count = self.uleb()?;
        for _ in 0..count {
            let len = self.uleb()?;
            self.take(len)?;
        }
        Some(())
    }

    /// Column metadata: `(specification, length)` pairs.
    fn columns(&mut self) -> Option<Vec<(u32, u64)>> {
        let count = self.uleb()?;
        let mut columns = Vec::new();
        for _ in 0..count {
            let spec = u32::try_from(self.uleb()?).ok()?;
            let len = self.uleb()?;
            columns.push((spec, len));
        }
        Some(columns)
    }
}

/// Counts what the column data following some metadata inflates to. `None` if the data is not
/// all there (Automerge then fails before inflating).
fn column_data(
    cur: &mut Cursor,
    columns: &[(u32, u64)],
    meter: &mut Meter,
) -> Result<Option<()>, TooLarge> {
    let total = columns
        .iter()
        .try_fold(0u64, |sum, (_, len)| sum.checked_add(*len));
    let Some(data) = total.and_then(|t| cur.take(t)) else {
        return Ok(None);
    };
    let mut at = 0usize;
    for (spec, len) in columns {
        let len = *len as usize; // fits: their sum fit in `data`
        let part = &data[at..at + len];
        at += len;
        if spec & DEFLATE_BIT != 0 {
            meter.inflate(part)?;
        } else {
            meter.add(len as u64)?;
        }
    }
    Ok(Some(()))
}

/// Walks one chunk; returns the bytes after it, or `None` when Automerge would stop here.
fn chunk<'a>(bytes: &'a [u8], meter: &mut Meter) -> Result<Option<&'a [u8]>, TooLarge> {
    let Some((kind, data, rest)) = chunk_header(bytes) else {
        return Ok(None);
    };
    let mut body = Cursor(data);
    let readable = match kind {
        DOCUMENT => (|| {
            body.actors()?;
            body.fixed_list(32)?;
            Some((body.columns()?, body.columns()?))
        })()
        .map(|(changes, ops)| -> Result<Option<()>, TooLarge> {
            if column_data(&mut body, &changes, meter)?.is_none() {
                return Ok(None);
            }
            column_data(&mut body, &ops, meter)
        })
        .transpose()?
        .flatten(),
        // A change's columns are never compressed (Automerge refuses them); it costs its size.
        CHANGE => meter.add(data.len() as u64).map(|()| Some(()))?,
        COMPRESSED => meter.inflate(data).map(|()| Some(()))?,
        BUNDLE => {
            let prefix = (|| {
                body.fixed_list(32)?;
                body.actors()
            })();
            match prefix.and_then(|()| body.columns()) {
                None => None,
                Some(changes) => match column_data(&mut body, &changes, meter)? {
                    None => None,
                    Some(()) => match body.columns() {
                        None => None,
                        Some(ops) => column_data(&mut body, &ops, meter)?,
                    },
                },
            }
        }
        _ => None,
    };
    Ok(readable.map(|()| rest))
}

/// Builders of hostile inputs, shared by the tests of this crate.
#[cfg(test)]
pub(crate) mod testing {
    use std::io::Write;

    use super::{DEFLATE_BIT, DOCUMENT, MAGIC};

    pub(crate) fn leb(out: &mut Vec<u8>, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }

    pub(crate) fn deflate_zeros(n: usize) -> Vec<u8> {
        let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        let block = vec![0u8; 1 << 20];
        let mut left = n;
        while left > 0 {
            let k = left.min(block.len());
            enc.write_all(&block[..k]).unwrap();
            left -= k;
        }
        enc.finish().unwrap()
    }

    pub(crate) fn chunk_of(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend([0, 0, 0, 0, kind]);
        leb(&mut out, body.len() as u64);
        out.extend(body);
        out
    }

    /// A document chunk with no actors or heads and one deflated change column.
    pub(crate) fn bomb(inflated: usize) -> Vec<u8> {
        let data = deflate_zeros(inflated);
        let mut body = vec![0, 0]; // no actors, no heads
        leb(&mut body, 1);
        leb(&mut body, u64::from((1 << 4) | DEFLATE_BIT));
        leb(&mut body, data.len() as u64);
        leb(&mut body, 0); // no op columns
        body.extend(&data);
        chunk_of(DOCUMENT, &body)
    }
}

#[cfg(test)]
mod tests {
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ROOT};

    use super::testing::{bomb, chunk_of, deflate_zeros, leb};
    use super::*;

    fn big_doc() -> AutoCommit {
        let mut doc = AutoCommit::new();
        let list = doc
            .put_object(ROOT, "items", automerge::ObjType::Map)
            .unwrap();
        for i in 0..300 {
            let item = doc
                .put_object(&list, format!("item{i}"), automerge::ObjType::Map)
                .unwrap();
            doc.put(&item, "body", "a body that repeats itself, ".repeat(20))
                .unwrap();
            doc.put(&item, "at", i as i64).unwrap();
            doc.commit();
        }
        doc
    }

    #[test]
    fn real_documents_changes_and_their_concatenation_are_counted_and_pass() {
        let mut doc = big_doc();
        let saved = doc.save();
        let inflated = check(&saved, MAX_INFLATED).unwrap();
        assert!(
            inflated > saved.len() as u64,
            "{inflated} vs {}",
            saved.len()
        );
        let mut more = doc.fork();
        more.put(ROOT, "x", "y").unwrap();
        let incremental = more.save_after(&doc.get_heads());
        let mut both = saved.clone();
        both.extend(&incremental);
        assert!(check(&both, MAX_INFLATED).unwrap() > inflated);
        assert_eq!(
            check(&doc.save_nocompress(), MAX_INFLATED).unwrap(),
            inflated,
            "compressed or not, the same columns"
        );
        // Every change as Automerge hands it out, compressed ones included.
        for change in doc.get_changes(&[]) {
            let mut change = change.clone();
            check(change.raw_bytes(), MAX_INFLATED).unwrap();
            check(change.bytes().as_ref(), MAX_INFLATED).unwrap();
        }
    }

    #[test]
    fn a_thousandfold_snapshot_is_refused_without_inflating_it() {
        let big = bomb(300 << 20);
        assert!(big.len() < 1 << 20, "{} bytes", big.len());
        assert_eq!(
            check(&big, MAX_INFLATED),
            Err(TooLarge {
                limit: MAX_INFLATED
            })
        );
        // The same stream as a compressed change chunk.
        let change = chunk_of(COMPRESSED, &deflate_zeros(300 << 20));
        assert!(check(&change, MAX_INFLATED).is_err());
        // Several small ones that add up, in one message.
        let small = bomb(100 << 20);
        assert!(check(&small, MAX_INFLATED).is_ok());
        assert!(check_all([&small[..], &small, &small], MAX_INFLATED).is_err());
        let mut joined = small.clone();
        joined.extend(&small);
        joined.extend(&small);
        assert!(check(&joined, MAX_INFLATED).is_err());
    }

    #[test]
    fn what_automerge_cannot_read_counts_only_as_far_as_it_reads() {
        let saved = big_doc().save();
        for cut in [0, 3, 8, 9, 12, saved.len() / 2, saved.len() - 1] {
            let counted = check(&saved[..cut], MAX_INFLATED).unwrap();
            assert!(counted <= check(&saved, MAX_INFLATED).unwrap());
        }
        assert_eq!(check(b"not automerge at all", MAX_INFLATED), Ok(0));
        // Column lengths that overflow when summed, and a LEB128 over ten bytes.
        let mut body = vec![0, 0, 2];
        leb(&mut body, 0x18);
        leb(&mut body, u64::MAX);
        leb(&mut body, 0x28);
        leb(&mut body, u64::MAX);
        assert_eq!(check(&chunk_of(DOCUMENT, &body), MAX_INFLATED), Ok(0));
        let mut long = MAGIC.to_vec();
        long.extend([0, 0, 0, 0, DOCUMENT]);
        long.extend([0xff; 11]);
        assert_eq!(check(&long, MAX_INFLATED), Ok(0));
    }
}
