//! A volume: one Automerge document holding up to [`VOLUME_CAPACITY`] items of
//! one journal.
//!
//! A journal is split into volumes so that a write loads only the open volume,
//! never the whole history (DESIGN.md §4). Each volume is created by exactly
//! one device of the journal's owner, under a fresh random id, so no two
//! devices ever create the same Automerge object independently.
//!
//! Document layout (keys of the root map):
//! - `duet`: format version (`1`)
//! - `journal`, `volume`: the ids, as base32 strings
//! - `created_at`: Unix ms
//! - `items`: map from item id to a map with `kind`, `created_at`,
//!   `edited_at` (absent until edited), `body` (a plain string, not `Text`:
//!   nobody co-edits a sentence and `Text` is ~15× slower to load), `tags`
//!   (list of strings), `starred`, `deleted`.
//!
//! A second root map `marks` holds this journal's owner's stars on items of
//! other journals (the partner's), keyed by item id.

use automerge::{
    ActorId, AutoCommit, ChangeHash, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, ScalarValueRef,
    Value, ValueRef, transaction::Transactable,
};

use crate::id::{ItemId, JournalId, VolumeId};
use crate::item::{Asked, Item, Kind, Ritual, SCORE_RANGE};

/// Items per volume. Loading a volume of this size costs a few milliseconds.
pub const VOLUME_CAPACITY: usize = 256;

const FORMAT: i64 = 1;

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("automerge: {0}")]
    Automerge(#[from] automerge::AutomergeError),
    #[error("the volume document is missing its `{0}` field (incomplete or not a duet volume)")]
    Missing(&'static str),
    #[error("the volume was written by a newer duet (format {0}); upgrade duet to read it")]
    NewerFormat(i64),
    #[error("no item {0} in this volume")]
    NoSuchItem(ItemId),
    #[error("{0}")]
    TooLarge(#[from] crate::inflate::TooLarge),
}

/// Most items one volume may hold when read. Writers start a new volume at
/// [`VOLUME_CAPACITY`]; two processes (or, later, two devices) adding at once may pass it by a
/// few. A volume naming more than this (only a modified client makes one) is read up to it.
pub const MAX_ITEMS_PER_VOLUME: usize = 4 * VOLUME_CAPACITY;

/// Loads stored or received Automerge bytes into `doc`, once they are known to inflate to at
/// most [`inflate::MAX_INFLATED`](crate::inflate::MAX_INFLATED). Every path by which bytes
/// from a file or a peer reach Automerge goes through here.
pub fn load_bounded(doc: &mut AutoCommit, bytes: &[u8]) -> Result<usize, VolumeError> {
    load_within(doc, bytes, crate::inflate::MAX_INFLATED)
}

/// [`load_bounded`] with a bound of its own (at most [`crate::inflate::MAX_INFLATED`]).
pub fn load_within(doc: &mut AutoCommit, bytes: &[u8], limit: u64) -> Result<usize, VolumeError> {
    crate::inflate::check(bytes, limit.min(crate::inflate::MAX_INFLATED))?;
    Ok(doc.load_incremental(bytes)?)
}

/// The distinct chunks of several files of changes, concatenated in the order first met.
/// Each chunk file of a volume holds every change since its snapshot, so a later file repeats
/// the ones before it, and Automerge would parse every copy before finding it known (loading
/// the open volume after 14 writes parsed 105 changes for 14). Byte-identical chunks are the
/// same change, so this loads exactly what the files hold. `None` if a file is not whole
/// chunks: the caller loads the files as they are, and Automerge says what is wrong.
pub fn distinct_chunks<'a>(files: impl IntoIterator<Item = &'a [u8]>) -> Option<Vec<u8>> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for file in files {
        for chunk in crate::inflate::split_chunks(file)? {
            if seen.insert(chunk) {
                out.extend_from_slice(chunk);
            }
        }
    }
    Some(out)
}

/// Which fields of an item a change touches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ItemUpdate {
    pub body: Option<String>,
    /// Set on an answer whose edit comes after the partner's answer was visible.
    pub edited_after_reveal: bool,
    pub tags: Option<Vec<String>>,
    pub starred: Option<bool>,
    pub deleted: Option<bool>,
}

/// What the index keeps of a volume, read out of its document: enough to list, search and
/// count it without the document (a sync reads it while a received volume is loaded, then lets
/// the document go).
#[derive(Clone, Debug, PartialEq)]
pub struct Contents {
    pub id: VolumeId,
    pub created_at: i64,
    pub marks: Vec<(ItemId, i64)>,
    pub heads: Vec<ChangeHash>,
    /// Where the next item can be added without loading the document (`None` if unknown).
    pub append: Option<AppendPoint>,
    pub items: Vec<Item>,
}

/// What a change adding an item to a volume refers to besides its heads: the volume's `items`
/// map (the id Automerge gave it, a counter and the actor who made it) and the largest op
/// counter among the heads' changes, after which the new change's ops are numbered. With
/// these and the heads, [`change_adding`] makes the very change [`Volume::add`] would make on
/// the loaded document, without loading it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppendPoint {
    pub items_counter: u64,
    pub items_actor: Vec<u8>,
    pub max_op: u64,
}

/// One field of a new item, in the order a change adding the item writes them. The one list
/// both [`Volume::add`] and [`change_adding`] write from.
enum Field<'a> {
    Scalar(&'static str, ScalarValue),
    Tags(&'a [String]),
}

fn new_item_fields(item: &Item) -> Vec<Field<'_>> {
    let mut fields = vec![
        Field::Scalar("kind", item.kind.as_str().into()),
        Field::Scalar("created_at", item.created_at.into()),
    ];
    if let Some(edited) = item.edited_at {
        fields.push(Field::Scalar("edited_at", edited.into()));
    }
    fields.push(Field::Scalar("body", item.body.as_str().into()));
    fields.push(Field::Tags(&item.tags));
    fields.push(Field::Scalar("starred", item.starred.into()));
    fields.push(Field::Scalar("deleted", item.deleted.into()));
    let ritual = &item.ritual;
    if let Some(re) = ritual.re {
        fields.push(Field::Scalar("re", re.to_string().into()));
    }
    if let Some(mood) = ritual.mood {
        fields.push(Field::Scalar("mood", i64::from(mood).into()));
    }
    if let Some(energy) = ritual.energy {
        fields.push(Field::Scalar("energy", i64::from(energy).into()));
    }
    if let Some(asked) = &ritual.question {
        fields.push(Field::Scalar("question", asked.id.as_str().into()));
        fields.push(Field::Scalar("asked_on", asked.date.as_str().into()));
    }
    fields
}

/// The change that adds `item` to a volume whose heads are `deps` and whose items map and
/// largest op counter `at` gives, by a fresh `actor` (its first change): byte for byte what
/// [`Volume::add`] commits on the loaded document (tests hold it to that). A write appends it
/// to the volume's changes without loading them into Automerge.
pub fn change_adding(
    item: &Item,
    at: &AppendPoint,
    deps: &[ChangeHash],
    actor: [u8; 16],
) -> automerge::Change {
    use automerge::legacy::{ElementId, Key, ObjectId, Op, OpId, OpType, SortedVec};
    let actor = ActorId::from(actor);
    let start = at.max_op + 1;
    let op = |action, obj: &ObjectId, key, insert| Op {
        action,
        obj: obj.clone(),
        key,
        pred: SortedVec::new(),
        insert,
    };
    let items = ObjectId::Id(OpId(at.items_counter, ActorId::from(&at.items_actor[..])));
    let mut ops = vec![op(
        OpType::Make(ObjType::Map),
        &items,
        Key::Map(item.id.to_string().into()),
        false,
    )];
    let obj = ObjectId::Id(OpId(start, actor.clone()));
    let next = |ops: &Vec<Op>| OpId(start + ops.len() as u64, actor.clone());
    for field in new_item_fields(item) {
        match field {
            Field::Scalar(name, value) => {
                ops.push(op(OpType::Put(value), &obj, Key::Map(name.into()), false));
            }
            Field::Tags(tags) => {
                let list = ObjectId::Id(next(&ops));
                ops.push(op(
                    OpType::Make(ObjType::List),
                    &obj,
                    Key::Map("tags".into()),
                    false,
                ));
                let mut after = ElementId::Head;
                for tag in tags {
                    let id = next(&ops);
                    ops.push(op(
                        OpType::Put(tag.as_str().into()),
                        &list,
                        Key::Seq(after),
                        true,
                    ));
                    after = ElementId::Id(id);
                }
            }
        }
    }
    let mut deps = deps.to_vec();
    deps.sort();
    automerge::ExpandedChange {
        operations: ops,
        actor_id: actor,
        hash: None,
        seq: 1,
        start_op: std::num::NonZeroU64::new(start).expect("start is at least 1"),
        time: 0,
        message: None,
        deps,
        extra_bytes: Vec::new(),
        author: None,
    }
    .into()
}

pub struct Volume {
    doc: AutoCommit,
    journal: JournalId,
    id: VolumeId,
    items: ObjId,
}

impl Volume {
    /// Start a new volume. Only the journal owner's devices call this.
    pub fn create(actor: [u8; 16], journal: JournalId, id: VolumeId, now: i64) -> Volume {
        let mut doc = AutoCommit::new().with_actor(ActorId::from(actor));
        doc.put(ROOT, "duet", FORMAT).expect("put on root");
        doc.put(ROOT, "journal", journal.to_string())
            .expect("put on root");
        doc.put(ROOT, "volume", id.to_string())
            .expect("put on root");
        doc.put(ROOT, "created_at", now).expect("put on root");
        let items = doc
            .put_object(ROOT, "items", ObjType::Map)
            .expect("put on root");
        doc.put_object(ROOT, "marks", ObjType::Map)
            .expect("put on root");
        doc.commit();
        Volume {
            doc,
            journal,
            id,
            items,
        }
    }

    /// Wrap a loaded document, checking that it is a duet volume.
    pub fn from_doc(actor: [u8; 16], mut doc: AutoCommit) -> Result<Volume, VolumeError> {
        doc.set_actor(ActorId::from(actor));
        let format = get_i64(&doc, &ROOT, "duet").ok_or(VolumeError::Missing("duet"))?;
        if format > FORMAT {
            return Err(VolumeError::NewerFormat(format));
        }
        let journal = get_str(&doc, &ROOT, "journal")
            .and_then(|s| s.parse().ok())
            .ok_or(VolumeError::Missing("journal"))?;
        let id = get_str(&doc, &ROOT, "volume")
            .and_then(|s| s.parse().ok())
            .ok_or(VolumeError::Missing("volume"))?;
        let items = get_obj(&doc, &ROOT, "items").ok_or(VolumeError::Missing("items"))?;
        Ok(Volume {
            doc,
            journal,
            id,
            items,
        })
    }

    /// Load from the bytes of one or more saved documents or incremental saves.
    pub fn load(actor: [u8; 16], data: &[u8]) -> Result<Volume, VolumeError> {
        Volume::load_within(actor, data, crate::inflate::MAX_INFLATED)
    }

    /// [`Volume::load`] of a document whose compressed parts inflate to at most `limit`.
    pub fn load_within(actor: [u8; 16], data: &[u8], limit: u64) -> Result<Volume, VolumeError> {
        let mut doc = AutoCommit::new();
        load_within(&mut doc, data, limit)?;
        Volume::from_doc(actor, doc)
    }

    pub fn id(&self) -> VolumeId {
        self.id
    }

    pub fn journal(&self) -> JournalId {
        self.journal
    }

    /// When the volume was started (Unix ms).
    pub fn created_at(&self) -> i64 {
        get_i64(&self.doc, &ROOT, "created_at").unwrap_or(0)
    }

    pub fn doc(&self) -> &AutoCommit {
        &self.doc
    }

    pub fn doc_mut(&mut self) -> &mut AutoCommit {
        &mut self.doc
    }

    pub fn into_doc(self) -> AutoCommit {
        self.doc
    }

    pub fn heads(&mut self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// What the index keeps of this volume, `items` given (when the caller already has them).
    pub fn contents_with(&mut self, items: Vec<Item>) -> Contents {
        Contents {
            id: self.id,
            created_at: self.created_at(),
            marks: self.marks(),
            heads: self.heads(),
            append: self.append_point(),
            items,
        }
    }

    /// What the index keeps of this volume.
    pub fn contents(&mut self) -> Contents {
        let items = self.items();
        self.contents_with(items)
    }

    /// Everything after `heads`, as an incremental save.
    pub fn save_after(&mut self, heads: &[ChangeHash]) -> Vec<u8> {
        self.doc.save_after(heads)
    }

    /// The whole volume as one compact document.
    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    /// Number of items, deleted ones included (they still occupy the volume).
    pub fn len(&self) -> usize {
        self.doc.length(&self.items)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn is_full(&self) -> bool {
        self.len() >= VOLUME_CAPACITY
    }

    pub fn contains(&self, id: ItemId) -> bool {
        get_obj(&self.doc, &self.items, &id.to_string()).is_some()
    }

    /// Add a new item as one change.
    pub fn add(&mut self, item: &Item) -> Result<(), VolumeError> {
        let key = item.id.to_string();
        let obj = self.doc.put_object(&self.items, &key, ObjType::Map)?;
        for field in new_item_fields(item) {
            match field {
                Field::Scalar(name, value) => self.doc.put(&obj, name, value)?,
                Field::Tags(tags) => put_tags(&mut self.doc, &obj, tags)?,
            }
        }
        self.doc.commit();
        Ok(())
    }

    /// Where a change adding an item can be made without this document: see [`AppendPoint`].
    /// `None` when `items` is not a map (only a modified client makes such a volume, and `add`
    /// fails on it too) or the heads' changes cannot be found.
    pub fn append_point(&mut self) -> Option<AppendPoint> {
        if self.doc.object_type(&self.items).ok()? != ObjType::Map {
            return None;
        }
        let automerge::ObjId::Id(counter, actor, _) = &self.items else {
            return None;
        };
        let (counter, actor) = (*counter, actor.to_bytes().to_vec());
        let heads = self.doc.get_heads();
        let max_op = heads
            .iter()
            .map(|h| self.doc.get_change_meta_by_hash(h).map(|m| m.max_op))
            .collect::<Option<Vec<u64>>>()?
            .into_iter()
            .max()?;
        Some(AppendPoint {
            items_counter: counter,
            items_actor: actor,
            max_op,
        })
    }

    /// Change some fields of an item as one change. `now` becomes `edited_at`
    /// when the body or tags change.
    pub fn update(&mut self, id: ItemId, update: &ItemUpdate, now: i64) -> Result<(), VolumeError> {
        let obj =
            get_obj(&self.doc, &self.items, &id.to_string()).ok_or(VolumeError::NoSuchItem(id))?;
        if let Some(body) = &update.body {
            self.doc.put(&obj, "body", body.as_str())?;
        }
        if let Some(tags) = &update.tags {
            put_tags(&mut self.doc, &obj, tags)?;
        }
        if update.body.is_some() || update.tags.is_some() {
            self.doc.put(&obj, "edited_at", now)?;
        }
        if update.edited_after_reveal {
            self.doc.put(&obj, "edited_after_reveal", true)?;
        }
        if let Some(starred) = update.starred {
            self.doc.put(&obj, "starred", starred)?;
        }
        if let Some(deleted) = update.deleted {
            self.doc.put(&obj, "deleted", deleted)?;
        }
        self.doc.commit();
        Ok(())
    }

    /// Read one item.
    pub fn item(&self, id: ItemId) -> Option<Item> {
        let obj = get_obj(&self.doc, &self.items, &id.to_string())?;
        read_item(&self.doc, id, &obj)
    }

    /// All items, in no particular order, at most [`MAX_ITEMS_PER_VOLUME`] + 1 of them (so a
    /// caller can tell the volume is over the bound). Malformed entries are skipped.
    ///
    /// One walk through the whole document ([`ReadDoc::iter`]: every object once, in the order
    /// they were made), not a lookup of each item's map and tags list: looking an object up
    /// costs a search of the document's operations, and a volume has 500 of them (the walk
    /// reads a volume of 256 items in about a third of the time). What it reads is what
    /// [`Volume::item`] reads of each item, which a test holds it to.
    pub fn items(&self) -> Vec<Item> {
        use automerge::iter::DocItem;
        // Each item's fields, in the order of the items map; which object is whose.
        let mut slots: Vec<(ItemId, ItemFields)> = Vec::new();
        let mut owners: std::collections::HashMap<ObjId, Owner> = Default::default();
        let mut entries = 0;
        // The walk gives an object's entries one after another: its owner is looked up once.
        let mut current: Option<(std::sync::Arc<ObjId>, Option<Owner>)> = None;
        for entry in self.doc.iter() {
            let owner = match &current {
                Some((obj, owner)) if std::sync::Arc::ptr_eq(obj, &entry.obj) => *owner,
                _ => {
                    let owner = if *entry.obj == self.items {
                        Some(Owner::Items)
                    } else {
                        owners.get(&*entry.obj).copied()
                    };
                    current = Some((entry.obj.clone(), owner));
                    owner
                }
            };
            match (owner, &entry.item) {
                (Some(Owner::Items), DocItem::Map(m)) => {
                    entries += 1;
                    if entries > MAX_ITEMS_PER_VOLUME + 1 {
                        continue;
                    }
                    let (Ok(id), ValueRef::Object(ObjType::Map)) = (m.key.parse(), &m.value) else {
                        continue;
                    };
                    owners.insert(m.id(), Owner::Item(slots.len()));
                    slots.push((id, ItemFields::default()));
                }
                (Some(Owner::Item(slot)), DocItem::Map(m)) => match (m.key.as_ref(), &m.value) {
                    ("tags", ValueRef::Object(ObjType::List)) => {
                        owners.insert(m.id(), Owner::Tags(slot));
                    }
                    (key, value) => slots[slot].1.set(key, value),
                },
                (Some(Owner::Tags(slot)), DocItem::List(l)) => {
                    slots[slot].1.tags.extend(tag(&l.value));
                }
                _ => {}
            }
        }
        slots
            .into_iter()
            .filter_map(|(id, fields)| fields.into_item(id))
            .collect()
    }

    /// Star (or unstar) an item of another journal (the partner's) in this one.
    /// The mark is the time it was set, negative when unstarred, so the
    /// latest decision wins when marks from several volumes meet.
    pub fn set_mark(&mut self, id: ItemId, starred: bool, now: i64) -> Result<(), VolumeError> {
        let marks = match get_obj(&self.doc, &ROOT, "marks") {
            Some(marks) => marks,
            None => self.doc.put_object(ROOT, "marks", ObjType::Map)?,
        };
        let at = now.max(1);
        self.doc
            .put(&marks, id.to_string(), if starred { at } else { -at })?;
        self.doc.commit();
        Ok(())
    }

    /// This owner's marks on other journals' items: `(id, signed time)`.
    pub fn marks(&self) -> Vec<(ItemId, i64)> {
        let Some(marks) = get_obj(&self.doc, &ROOT, "marks") else {
            return Vec::new();
        };
        self.doc
            .map_range(&marks, ..)
            .filter_map(|entry| {
                let id = entry.key.parse().ok()?;
                match entry.value {
                    ValueRef::Scalar(ScalarValueRef::Int(t)) => Some((id, t)),
                    _ => None,
                }
            })
            .collect()
    }
}

/// Whether an item is starred once every mark on it is known: the latest mark wins.
pub fn resolve_marks(marks: impl IntoIterator<Item = i64>) -> Option<bool> {
    marks
        .into_iter()
        .max_by_key(|t| t.unsigned_abs())
        .map(|t| t > 0)
}

fn put_tags(doc: &mut AutoCommit, obj: &ObjId, tags: &[String]) -> Result<(), VolumeError> {
    let list = doc.put_object(obj, "tags", ObjType::List)?;
    for (i, tag) in tags.iter().enumerate() {
        doc.insert(&list, i, tag.as_str())?;
    }
    Ok(())
}

fn scalar_i64(value: &ScalarValueRef<'_>) -> Option<i64> {
    match value {
        ScalarValueRef::Int(i) | ScalarValueRef::Timestamp(i) => Some(*i),
        ScalarValueRef::Uint(u) => i64::try_from(*u).ok(),
        _ => None,
    }
}

/// Read an item's fields in one pass over its map (one item: `show`, `edit`).
fn read_item(doc: &AutoCommit, id: ItemId, obj: &ObjId) -> Option<Item> {
    let mut fields = ItemFields::default();
    for entry in doc.map_range(obj, ..) {
        match (entry.key.as_ref(), &entry.value) {
            ("tags", ValueRef::Object(ObjType::List)) => {
                let list = entry.id();
                fields.tags = doc
                    .list_range(&list, ..)
                    .filter_map(|e| tag(&e.value))
                    .collect();
            }
            (key, value) => fields.set(key, value),
        }
    }
    fields.into_item(id)
}

/// Whose an object of a volume is, as [`Volume::items`] walks it: the items map, the map of
/// the item in that slot, or that item's tags list.
#[derive(Clone, Copy)]
enum Owner {
    Items,
    Item(usize),
    Tags(usize),
}

/// A tag as a tags list holds it (anything but a string is not a tag).
fn tag(value: &ValueRef<'_>) -> Option<String> {
    match value {
        ValueRef::Scalar(ScalarValueRef::Str(s)) => Some(s.to_string()),
        _ => None,
    }
}

/// The fields of one item as they are read out of its map, in any order: the one reading of
/// an item's map both [`read_item`] and [`Volume::items`] make.
#[derive(Default)]
struct ItemFields {
    kind: Option<Kind>,
    created_at: Option<i64>,
    edited_at: Option<i64>,
    body: String,
    tags: Vec<String>,
    starred: bool,
    deleted: bool,
    ritual: Ritual,
    question: Option<String>,
    asked_on: Option<String>,
}

impl ItemFields {
    /// Takes one scalar field of the item's map (the tags list is read apart); a key it does
    /// not know, or a value of the wrong type, is left out.
    fn set(&mut self, key: &str, value: &ValueRef<'_>) {
        let score = |v: &ScalarValueRef<'_>| {
            scalar_i64(v)
                .and_then(|n| u8::try_from(n).ok())
                .filter(|n| SCORE_RANGE.contains(n))
        };
        let ValueRef::Scalar(v) = value else {
            return;
        };
        match (key, v) {
            ("re", ScalarValueRef::Str(s)) => self.ritual.re = s.parse().ok(),
            ("mood", v) => self.ritual.mood = score(v),
            ("energy", v) => self.ritual.energy = score(v),
            ("question", ScalarValueRef::Str(s)) => self.question = Some(s.to_string()),
            ("asked_on", ScalarValueRef::Str(s)) => self.asked_on = Some(s.to_string()),
            ("edited_after_reveal", ScalarValueRef::Boolean(b)) => {
                self.ritual.edited_after_reveal = *b
            }
            ("kind", ScalarValueRef::Str(s)) => self.kind = Some(Kind::from_stored(s)),
            ("created_at", v) => self.created_at = scalar_i64(v),
            ("edited_at", v) => self.edited_at = scalar_i64(v),
            ("body", ScalarValueRef::Str(s)) => self.body = s.to_string(),
            ("starred", ScalarValueRef::Boolean(b)) => self.starred = *b,
            ("deleted", ScalarValueRef::Boolean(b)) => self.deleted = *b,
            _ => {}
        }
    }

    /// The item, if its map held what every item has (a kind and a creation time).
    fn into_item(self, id: ItemId) -> Option<Item> {
        Some(Item {
            id,
            kind: self.kind?,
            created_at: self.created_at?,
            edited_at: self.edited_at,
            body: self.body,
            tags: self.tags,
            starred: self.starred,
            deleted: self.deleted,
            ritual: Ritual {
                question: self
                    .question
                    .zip(self.asked_on)
                    .map(|(id, date)| Asked { id, date }),
                ..self.ritual
            },
        })
    }
}

fn get_scalar(doc: &AutoCommit, obj: &ObjId, key: &str) -> Option<ScalarValue> {
    match doc.get(obj, key).ok().flatten()? {
        (Value::Scalar(s), _) => Some(s.into_owned()),
        _ => None,
    }
}

fn get_str(doc: &AutoCommit, obj: &ObjId, key: &str) -> Option<String> {
    match get_scalar(doc, obj, key)? {
        ScalarValue::Str(s) => Some(s.to_string()),
        _ => None,
    }
}

fn get_i64(doc: &AutoCommit, obj: &ObjId, key: &str) -> Option<i64> {
    match get_scalar(doc, obj, key)? {
        ScalarValue::Int(i) => Some(i),
        ScalarValue::Uint(u) => i64::try_from(u).ok(),
        ScalarValue::Timestamp(t) => Some(t),
        _ => None,
    }
}

fn get_obj(doc: &AutoCommit, obj: &ObjId, key: &str) -> Option<ObjId> {
    match doc.get(obj, key).ok().flatten()? {
        (Value::Object(_), id) => Some(id),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(n: u8, body: &str) -> Item {
        Item {
            id: ItemId([n; 8]),
            kind: Kind::Entry,
            created_at: 1_700_000_000_000 + i64::from(n),
            edited_at: None,
            body: body.into(),
            tags: vec!["a".into()],
            starred: false,
            deleted: false,
            ritual: Default::default(),
        }
    }

    /// A volume of `n` items, each added by a process of its own (its own actor), as writes
    /// made them: the shape a change made without the document must fit into.
    fn written_by_many(n: u8) -> Volume {
        let mut vol = Volume::create([1; 16], JournalId([2; 16]), VolumeId([3; 8]), 5);
        for k in 0..n {
            let mut next = Volume::load([10 + k; 16], &vol.save()).unwrap();
            next.add(&item(k, "an earlier page")).unwrap();
            vol = next;
        }
        vol
    }

    /// `change_adding` must make, byte for byte, the change `add` commits on the loaded
    /// document: the same hash, so a volume written either way is the same volume.
    fn assert_same_change_as_add(vol: &mut Volume, new: &Item) {
        let at = vol.append_point().expect("a volume made by duet has one");
        let heads = vol.heads();
        let saved = vol.save();
        let made = change_adding(new, &at, &heads, [0xaa; 16]);
        let mut loaded = Volume::load([0xaa; 16], &saved).unwrap();
        loaded.add(new).unwrap();
        let by_add = loaded.doc_mut().get_last_local_change().unwrap();
        assert_eq!(made.hash(), by_add.hash());
        assert_eq!(made.raw_bytes(), by_add.raw_bytes());
        // And the document made of the stored bytes and that change holds the item.
        let mut appended = saved.clone();
        appended.extend_from_slice(made.raw_bytes());
        let mut back = Volume::load([0xbb; 16], &appended).unwrap();
        assert_eq!(back.item(new.id).as_ref(), Some(new));
        assert_eq!(back.heads(), vec![made.hash()]);
        assert_eq!(back.append_point().unwrap().max_op, made.max_op());
    }

    #[test]
    fn a_change_made_without_the_document_is_the_one_add_makes() {
        let mut vol = written_by_many(6);
        let mut full = item(200, "Long walk, long talk, and soup after");
        full.kind = Kind::Answer;
        full.edited_at = Some(1_700_000_000_999);
        full.tags = vec!["walk".into(), "soup".into(), "us".into()];
        full.starred = true;
        full.ritual = Ritual {
            re: Some(ItemId([7; 8])),
            mood: Some(4),
            energy: Some(2),
            question: Some(Asked {
                id: "memories-07".into(),
                date: "2026-11-27".into(),
            }),
            ..Default::default()
        };
        let mut bare = item(201, "");
        bare.tags.clear();
        for new in [full, bare, item(202, "plain")] {
            assert_same_change_as_add(&mut vol, &new);
        }
        // A new volume (only its creating change) and a volume with concurrent heads.
        assert_same_change_as_add(&mut written_by_many(0), &item(203, "first"));
        let base = written_by_many(2).save();
        let mut left = Volume::load([0x31; 16], &base).unwrap();
        let mut right = Volume::load([0x32; 16], &base).unwrap();
        left.add(&item(40, "left")).unwrap();
        right.add(&item(41, "right")).unwrap();
        let mut both = left.save();
        both.extend_from_slice(&right.save());
        let mut merged = Volume::load([0x33; 16], &both).unwrap();
        assert_eq!(merged.heads().len(), 2);
        assert_same_change_as_add(&mut merged, &item(204, "after both"));
    }

    #[test]
    fn a_volume_whose_items_are_not_a_map_has_no_append_point() {
        let mut doc = AutoCommit::new().with_actor(ActorId::from([1u8; 16]));
        doc.put(ROOT, "duet", FORMAT).unwrap();
        doc.put(ROOT, "journal", JournalId([2; 16]).to_string())
            .unwrap();
        doc.put(ROOT, "volume", VolumeId([3; 8]).to_string())
            .unwrap();
        doc.put_object(ROOT, "items", ObjType::List).unwrap();
        doc.commit();
        let mut vol = Volume::from_doc([4; 16], doc).unwrap();
        assert_eq!(vol.append_point(), None);
        assert!(vol.add(&item(1, "nowhere to go")).is_err());
        let mut fine = written_by_many(1);
        assert!(fine.append_point().is_some());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        #[test]
        fn any_new_item_is_added_the_same_without_the_document(
            body in "\\PC{0,80}",
            tags in proptest::collection::vec("[a-z0-9-]{1,12}", 0..6),
            kind in 0u8..5,
            edited in proptest::option::of(0i64..i64::MAX),
            starred: bool,
            mood in proptest::option::of(1u8..=5),
            re: Option<[u8; 8]>,
            earlier in 0u8..4,
        ) {
            let mut new = item(250, &body);
            new.kind = match kind {
                0 => Kind::Entry,
                1 => Kind::Thanks,
                2 => Kind::Checkin,
                3 => Kind::Answer,
                _ => Kind::Other("letter".into()),
            };
            new.tags = tags;
            new.edited_at = edited;
            new.starred = starred;
            new.ritual.mood = mood;
            new.ritual.re = re.map(ItemId);
            assert_same_change_as_add(&mut written_by_many(earlier), &new);
        }
    }

    #[test]
    fn items_survive_save_and_load() {
        let mut vol = Volume::create([1; 16], JournalId([7; 16]), VolumeId([3; 8]), 5);
        vol.add(&item(1, "one")).unwrap();
        vol.add(&item(2, "two")).unwrap();
        let heads = vol.heads();
        vol.update(
            ItemId([1; 8]),
            &ItemUpdate {
                body: Some("uno".into()),
                starred: Some(true),
                ..Default::default()
            },
            99,
        )
        .unwrap();
        let mut bytes = vol.save();
        let loaded = Volume::load([2; 16], &bytes).unwrap();
        assert_eq!(loaded.id(), VolumeId([3; 8]));
        assert_eq!(loaded.journal(), JournalId([7; 16]));
        let one = loaded.item(ItemId([1; 8])).unwrap();
        assert_eq!(
            (one.body.as_str(), one.starred, one.edited_at),
            ("uno", true, Some(99))
        );
        assert_eq!(loaded.len(), 2);

        // incremental: snapshot at `heads` plus what came after
        let mut early = Volume::load([3; 16], &bytes).unwrap();
        let _ = early.heads();
        bytes = vol.save_after(&heads);
        early.doc_mut().load_incremental(&bytes).unwrap();
        assert_eq!(early.items().len(), 2);
    }

    /// `items` walks the whole document once; `item` looks one item's map up. On a volume with
    /// edits, merged concurrent edits, rituals and entries a modified client made (not a map,
    /// no kind, a key that is not an id, tags that are not strings, objects where scalars
    /// belong, a map the walk passes through), both must read the same items.
    #[test]
    fn the_walk_through_a_volume_reads_what_each_items_own_lookup_reads() {
        let mut vol = Volume::create([1; 16], JournalId([7; 16]), VolumeId([3; 8]), 5);
        for n in 1..=6 {
            let mut it = item(n, &format!("page {n}"));
            it.tags = (0..n % 3).map(|t| format!("tag{t}")).collect();
            if n == 4 {
                it.kind = Kind::Checkin;
                it.ritual.mood = Some(3);
                it.ritual.energy = Some(4);
            }
            if n == 5 {
                it.kind = Kind::Answer;
                it.ritual.question = Some(Asked {
                    id: "q-7".into(),
                    date: "2026-11-28".into(),
                });
            }
            vol.add(&it).unwrap();
        }
        let update = |body: &str, tags: &[&str]| ItemUpdate {
            body: Some(body.into()),
            tags: Some(tags.iter().map(|t| t.to_string()).collect()),
            starred: Some(true),
            ..Default::default()
        };
        vol.update(ItemId([2; 8]), &update("edited", &["x", "y"]), 50)
            .unwrap();
        // Two devices edit item 3 at once; the merge keeps one of each field.
        let mut other = Volume::load([9; 16], &vol.save()).unwrap();
        vol.update(ItemId([3; 8]), &update("here", &["h"]), 60)
            .unwrap();
        other
            .update(ItemId([3; 8]), &update("there", &["t1", "t2"]), 61)
            .unwrap();
        vol.doc_mut().merge(other.doc_mut()).unwrap();
        // What only a modified client writes.
        let items = vol.items.clone();
        let doc = vol.doc_mut();
        doc.put(&items, ItemId([20; 8]).to_string(), "not a map")
            .unwrap();
        doc.put_object(&items, "not-an-id", ObjType::Map).unwrap();
        let kindless = doc
            .put_object(&items, ItemId([21; 8]).to_string(), ObjType::Map)
            .unwrap();
        doc.put(&kindless, "body", "no kind").unwrap();
        let odd = doc
            .put_object(&items, ItemId([22; 8]).to_string(), ObjType::Map)
            .unwrap();
        doc.put(&odd, "kind", "entry").unwrap();
        doc.put(&odd, "created_at", 5_i64).unwrap();
        let tags = doc.put_object(&odd, "tags", ObjType::List).unwrap();
        doc.insert(&tags, 0, "kept").unwrap();
        doc.insert(&tags, 1, 7_i64).unwrap();
        doc.insert_object(&tags, 2, ObjType::Map).unwrap();
        doc.insert(&tags, 3, "also kept").unwrap();
        let nested = doc.put_object(&odd, "body", ObjType::Map).unwrap();
        doc.put(&nested, "body", "deep").unwrap();
        let extra = doc.put_object(ROOT, "elsewhere", ObjType::Map).unwrap();
        doc.put(&extra, "kind", "entry").unwrap();
        doc.commit();

        let walked = vol.items();
        let ids: Vec<ItemId> = walked.iter().map(|i| i.id).collect();
        let looked_up: Vec<Item> = ids.iter().filter_map(|id| vol.item(*id)).collect();
        assert_eq!(walked, looked_up);
        let mut every_id: Vec<ItemId> = (1..=6).map(|n| ItemId([n; 8])).collect();
        every_id.push(ItemId([22; 8]));
        assert_eq!(ids, every_id, "in id order, the malformed ones left out");
        let odd = &walked[6];
        assert_eq!(
            (odd.tags.clone(), odd.body.as_str()),
            (vec!["kept".to_string(), "also kept".into()], "")
        );
        assert_eq!(walked[1].tags, ["x", "y"]);
        assert!(["here", "there"].contains(&walked[2].body.as_str()));
        assert_eq!(walked[3].ritual.mood, Some(3));
        assert_eq!(
            walked[4].ritual.question.as_ref().map(|q| q.id.as_str()),
            Some("q-7")
        );
    }

    #[test]
    fn chunk_files_that_repeat_each_other_load_once_and_the_same() {
        // As the store writes them: a snapshot, then after each write a chunk of every change
        // since the snapshot, each write by a process of its own (a new actor).
        let mut vol = Volume::create([1; 16], JournalId([7; 16]), VolumeId([3; 8]), 5);
        vol.add(&item(1, "one")).unwrap();
        let snapshot = vol.save();
        let base = vol.heads();
        let mut files = Vec::new();
        for n in 2..6u8 {
            vol = Volume::from_doc([n; 16], vol.into_doc()).unwrap();
            vol.add(&item(n, &format!("entry {n} with a few words")))
                .unwrap();
            files.push(vol.save_after(&base));
        }
        // A concurrent writer's chunk, which the others do not hold.
        let mut other = Volume::load([9; 16], &snapshot).unwrap();
        other.add(&item(9, "written at the same moment")).unwrap();
        files.push(other.save_after(&base));

        let distinct = distinct_chunks(files.iter().map(|f| &f[..])).unwrap();
        let (last, concurrent) = (&files[3], &files[4]);
        assert_eq!(
            distinct.len(),
            last.len() + concurrent.len(),
            "each change once"
        );
        let load = |changes: &[u8]| {
            let mut v = Volume::load([8; 16], &snapshot).unwrap();
            load_bounded(v.doc_mut(), changes).unwrap();
            (v.heads(), v.items())
        };
        assert_eq!(load(&distinct), load(&files.concat()));
        assert_eq!(load(&distinct).1.len(), 6);
        // Anything that is not whole chunks is left for Automerge to refuse.
        assert_eq!(distinct_chunks([&b"not automerge"[..]]), None);
        assert_eq!(distinct_chunks([&last[..last.len() - 1]]), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(Volume::load([1; 16], b"not automerge").is_err());
        let mut doc = AutoCommit::new();
        doc.put(ROOT, "x", 1).unwrap();
        assert!(matches!(
            Volume::from_doc([1; 16], doc),
            Err(VolumeError::Missing("duet"))
        ));
    }
}
