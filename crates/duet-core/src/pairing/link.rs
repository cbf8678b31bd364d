//! What a device of mine hands a new device of mine once both screens showed the same code:
//! the person key, the journals, the device list that now certifies the new device, and the
//! pinned partner. Sent once, over the handshake's authenticated and encrypted stream.

use std::net::SocketAddr;

use super::{MAX_NAME_LEN, PAIRING_VERSION, PairingError};
use crate::authority::{DeviceId, DeviceList, PersonId, PersonKey};
use crate::codec::{DecodeError, Reader, Writer};

/// Largest grant accepted: two full device lists and a partner record fit many times over.
pub const MAX_GRANT_LEN: usize = 64 * 1024;

const TAG_GRANT: u8 = 1;

/// The pinned partner, as the linking device knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartnerGrant {
    pub name: String,
    /// The partner device pinned at pairing.
    pub endpoint_id: [u8; 32],
    pub journal: [u8; 16],
    pub addrs: Vec<SocketAddr>,
    pub relay_url: Option<String>,
    pub paired_at: i64,
    pub paired_epoch: Option<i64>,
    /// The partner's device list, encoded (empty for a partner paired before device lists).
    pub devices: Vec<u8>,
}

/// Everything a new device of mine needs to be me.
#[derive(Clone, PartialEq, Eq)]
pub struct LinkGrant {
    /// The person key's secret: with it the new device can link and revoke devices too.
    pub person_seed: [u8; 32],
    pub name: String,
    pub journal: [u8; 16],
    pub private_journal: [u8; 16],
    pub created_at: i64,
    /// My device list, encoded; it certifies the new device.
    pub devices: Vec<u8>,
    pub partner: Option<PartnerGrant>,
    /// Where the linking device last reached the other devices of the couple (at most
    /// [`crate::sync::MAX_HINTED_DEVICES`]): places to dial, never proof of who answers.
    pub hints: Vec<(DeviceId, Vec<SocketAddr>)>,
}

// The person key must not reach a log through `{:?}`.
impl std::fmt::Debug for LinkGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkGrant")
            .field("person_seed", &"<hidden>")
            .field("name", &self.name)
            .field("partner", &self.partner)
            .finish_non_exhaustive()
    }
}

/// A grant checked against the handshake: what the new device stores.
#[derive(Debug)]
pub struct CheckedGrant {
    pub person: PersonKey,
    pub devices: DeviceList,
    pub partner_devices: Option<DeviceList>,
}

impl LinkGrant {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(PAIRING_VERSION);
        w.u8(TAG_GRANT);
        w.bytes(&self.person_seed);
        w.short_str(&self.name, MAX_NAME_LEN);
        w.bytes(&self.journal);
        w.bytes(&self.private_journal);
        w.i64(self.created_at);
        w.long_bytes(&self.devices);
        match &self.partner {
            None => w.u8(0),
            Some(p) => {
                w.u8(1);
                w.short_str(&p.name, MAX_NAME_LEN);
                w.bytes(&p.endpoint_id);
                w.bytes(&p.journal);
                w.addrs(&p.addrs);
                w.opt_url(p.relay_url.as_deref());
                w.i64(p.paired_at);
                w.i64(p.paired_epoch.unwrap_or(i64::MIN));
                w.long_bytes(&p.devices);
            }
        }
        let hints = &self.hints[..self.hints.len().min(crate::sync::MAX_HINTED_DEVICES)];
        w.u32(hints.len() as u32);
        for (device, addrs) in hints {
            w.bytes(device);
            w.addrs(addrs);
        }
        w.0
    }

    pub fn decode(bytes: &[u8]) -> Result<LinkGrant, PairingError> {
        if bytes.len() > MAX_GRANT_LEN {
            return Err(PairingError::BadGrant);
        }
        let mut r = Reader::new(bytes);
        let grant = Self::read(&mut r).map_err(PairingError::malformed)?;
        r.finish().map_err(PairingError::malformed)?;
        Ok(grant)
    }

    fn read(r: &mut Reader) -> Result<LinkGrant, DecodeError> {
        if r.u8()? != PAIRING_VERSION || r.u8()? != TAG_GRANT {
            return Err(DecodeError::BadFlag);
        }
        let person_seed = r.array()?;
        let name = r.short_str()?;
        let journal = r.array()?;
        let private_journal = r.array()?;
        let created_at = r.i64()?;
        let devices = r.long_bytes()?.to_vec();
        let partner = match r.u8()? {
            0 => None,
            1 => Some(PartnerGrant {
                name: r.short_str()?,
                endpoint_id: r.array()?,
                journal: r.array()?,
                addrs: r.addrs()?,
                relay_url: r.opt_url()?,
                paired_at: r.i64()?,
                paired_epoch: Some(r.i64()?).filter(|e| *e != i64::MIN),
                devices: r.long_bytes()?.to_vec(),
            }),
            _ => return Err(DecodeError::BadFlag),
        };
        let n = r.count(32 + 1)?;
        if n > crate::sync::MAX_HINTED_DEVICES {
            return Err(DecodeError::CountTooLarge);
        }
        let mut hints = Vec::with_capacity(n);
        for _ in 0..n {
            hints.push((r.array()?, r.addrs()?));
        }
        let grant = LinkGrant {
            person_seed,
            name,
            journal,
            private_journal,
            created_at,
            devices,
            partner,
            hints,
        };
        Ok(grant)
    }

    /// Checks the grant against what the handshake proved: the person key is the one whose
    /// list certified the linking device (`person`), its list certifies this device (`me`),
    /// the names are showable, and the journals are distinct. Anything else is refused whole.
    pub fn check(&self, person: &PersonId, me: &DeviceId) -> Result<CheckedGrant, PairingError> {
        let bad = |_| PairingError::BadGrant;
        let key = PersonKey::from_seed(self.person_seed);
        if key.id() != *person {
            return Err(PairingError::BadGrant);
        }
        let devices = DeviceList::decode(&self.devices).map_err(bad)?;
        if devices.person() != *person || !devices.admits(me) {
            return Err(PairingError::BadGrant);
        }
        if !crate::text::valid_name(&self.name) || self.journal == self.private_journal {
            return Err(PairingError::BadGrant);
        }
        let partner_devices = match &self.partner {
            None => None,
            Some(p) => {
                if !crate::text::valid_name(&p.name)
                    || p.journal == self.journal
                    || p.journal == self.private_journal
                {
                    return Err(PairingError::BadGrant);
                }
                if p.devices.is_empty() {
                    None
                } else {
                    let list = DeviceList::decode(&p.devices).map_err(bad)?;
                    if list.person() == *person {
                        return Err(PairingError::BadGrant);
                    }
                    Some(list)
                }
            }
        };
        Ok(CheckedGrant {
            person: key,
            devices,
            partner_devices,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authority::DeviceKey;

    fn grant(person: &PersonKey, me: &DeviceKey) -> LinkGrant {
        let mut list = DeviceList::new(person.id());
        list.add_cert(person.certify([1; 32], "laptop", 1)).unwrap();
        list.add_cert(person.certify(me.id(), "phone", 2)).unwrap();
        let sam = PersonKey::from_seed([8; 32]);
        let mut theirs = DeviceList::new(sam.id());
        theirs.add_cert(sam.certify([3; 32], "desk", 1)).unwrap();
        LinkGrant {
            person_seed: person.seed(),
            name: "Alex".into(),
            journal: [1; 16],
            private_journal: [2; 16],
            created_at: 5,
            devices: list.encode(),
            partner: Some(PartnerGrant {
                name: "Sam".into(),
                endpoint_id: [3; 32],
                journal: [4; 16],
                addrs: vec!["127.0.0.1:4000".parse().unwrap()],
                relay_url: None,
                paired_at: 9,
                paired_epoch: Some(10),
                devices: theirs.encode(),
            }),
            hints: vec![([1; 32], vec!["127.0.0.1:4001".parse().unwrap()])],
        }
    }

    #[test]
    fn a_grant_round_trips_and_checks_against_the_handshake() {
        let person = PersonKey::from_seed([7; 32]);
        let me = DeviceKey::from_bytes([9; 32]);
        let g = grant(&person, &me);
        let back = LinkGrant::decode(&g.encode()).unwrap();
        assert_eq!(back, g);
        let checked = back.check(&person.id(), &me.id()).unwrap();
        assert_eq!(checked.person.id(), person.id());
        assert!(checked.partner_devices.unwrap().admits(&[3; 32]));
        assert!(!format!("{g:?}").contains("7, 7"));
    }

    #[test]
    fn a_grant_that_does_not_hold_together_is_refused() {
        let person = PersonKey::from_seed([7; 32]);
        let me = DeviceKey::from_bytes([9; 32]);
        let other = PersonKey::from_seed([6; 32]);
        // Another person's key than the one whose list certified the linking device.
        assert_eq!(
            grant(&other, &me)
                .check(&person.id(), &me.id())
                .unwrap_err(),
            PairingError::BadGrant
        );
        // A list that does not certify me.
        let stranger = DeviceKey::from_bytes([5; 32]);
        assert!(
            grant(&person, &stranger)
                .check(&person.id(), &me.id())
                .is_err()
        );
        // A partner claiming my own journal, or my own person.
        let mut g = grant(&person, &me);
        g.partner.as_mut().unwrap().journal = g.journal;
        assert!(g.check(&person.id(), &me.id()).is_err());
        let mut g = grant(&person, &me);
        g.partner.as_mut().unwrap().devices = g.devices.clone();
        assert!(g.check(&person.id(), &me.id()).is_err());
        // Names with control characters.
        let mut g = grant(&person, &me);
        g.name = "Al\u{1b}[2Jex".into();
        assert!(g.check(&person.id(), &me.id()).is_err());
        // Damage anywhere.
        let bytes = grant(&person, &me).encode();
        for cut in [0, 1, 10, bytes.len() - 1] {
            assert!(LinkGrant::decode(&bytes[..cut]).is_err());
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(LinkGrant::decode(&long).is_err());
    }
}
