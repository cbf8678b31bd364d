//! The one small binary codec of duet's own formats: tickets, handshake messages, sync batches
//! and peer state, device lists and signatures.
//!
//! Fixed-size fields are raw bytes, integers are big-endian, strings are a one-byte length then
//! UTF-8, address lists are a one-byte count then `family ‖ ip ‖ port`, lists a `u32` count
//! checked against the bytes left. Decoding never panics and never allocates more than the
//! input could describe.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::pairing::{MAX_ADDRS, MAX_RELAY_URL_LEN};

const FAMILY_V4: u8 = 4;
const FAMILY_V6: u8 = 6;

/// Appends fields to a byte buffer.
pub(crate) struct Writer(pub(crate) Vec<u8>);

impl Writer {
    pub(crate) fn new() -> Self {
        Writer(Vec::with_capacity(128))
    }

    pub(crate) fn u8(&mut self, value: u8) {
        self.0.push(value);
    }

    pub(crate) fn bytes(&mut self, value: &[u8]) {
        self.0.extend_from_slice(value);
    }

    pub(crate) fn i64(&mut self, value: i64) {
        self.0.extend_from_slice(&value.to_be_bytes());
    }

    pub(crate) fn u32(&mut self, value: u32) {
        self.0.extend_from_slice(&value.to_be_bytes());
    }

    /// A byte string of any length: a `u32` length, then the bytes.
    pub(crate) fn long_bytes(&mut self, value: &[u8]) {
        self.u32(value.len() as u32);
        self.bytes(value);
    }

    /// A short string: one length byte, then the bytes. Longer input is cut at the last
    /// character boundary that fits; the state machines validate lengths before encoding, so
    /// only hand-built messages are ever cut.
    pub(crate) fn short_str(&mut self, value: &str, max: usize) {
        let value = truncate_at_char(value, max.min(u8::MAX as usize));
        self.u8(value.len() as u8);
        self.bytes(value.as_bytes());
    }

    /// An optional short string; `None` and the empty string are both written as length 0.
    /// A value too long to carry whole is dropped rather than cut, because a cut URL is wrong.
    pub(crate) fn opt_url(&mut self, value: Option<&str>) {
        match value {
            Some(url) if url.len() <= MAX_RELAY_URL_LEN => self.short_str(url, MAX_RELAY_URL_LEN),
            _ => self.u8(0),
        }
    }

    pub(crate) fn addrs(&mut self, addrs: &[SocketAddr]) {
        let addrs = &addrs[..addrs.len().min(MAX_ADDRS)];
        self.u8(addrs.len() as u8);
        for addr in addrs {
            match addr.ip() {
                IpAddr::V4(ip) => {
                    self.u8(FAMILY_V4);
                    self.bytes(&ip.octets());
                }
                IpAddr::V6(ip) => {
                    self.u8(FAMILY_V6);
                    self.bytes(&ip.octets());
                }
            }
            self.bytes(&addr.port().to_be_bytes());
        }
    }
}

fn truncate_at_char(value: &str, max: usize) -> &str {
    if value.len() <= max {
        return value;
    }
    let mut end = max;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    &value[..end]
}

/// Why a byte string could not be decoded; turned into a user-facing error by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DecodeError {
    Truncated,
    TrailingBytes,
    BadUtf8,
    BadAddressFamily,
    TooManyAddresses,
    BadFlag,
    CountTooLarge,
}

impl DecodeError {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            DecodeError::Truncated => "it ends too early",
            DecodeError::TrailingBytes => "it has extra bytes at the end",
            DecodeError::BadUtf8 => "a text field is not valid UTF-8",
            DecodeError::BadAddressFamily => "an address has an unknown family",
            DecodeError::TooManyAddresses => "it lists too many addresses",
            DecodeError::BadFlag => "a yes/no field holds another value",
            DecodeError::CountTooLarge => "a count larger than the message",
        }
    }
}

/// Reads fields from the front of a byte slice.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    pub(crate) fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < len {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.rest.split_at(len);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::BadFlag),
        }
    }

    pub(crate) fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// A `u32` count of records of at least `size` bytes each, checked against what is left,
    /// so that nothing is reserved that the input could not fill.
    pub(crate) fn count(&mut self, size: usize) -> Result<usize, DecodeError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(size) > self.rest.len() {
            return Err(DecodeError::CountTooLarge);
        }
        Ok(n)
    }

    /// A byte string written by [`Writer::long_bytes`].
    pub(crate) fn long_bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    pub(crate) fn short_str(&mut self) -> Result<String, DecodeError> {
        let len = self.u8()? as usize;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::BadUtf8)
    }

    pub(crate) fn opt_url(&mut self) -> Result<Option<String>, DecodeError> {
        let url = self.short_str()?;
        Ok((!url.is_empty()).then_some(url))
    }

    pub(crate) fn addrs(&mut self) -> Result<Vec<SocketAddr>, DecodeError> {
        let count = self.u8()? as usize;
        if count > MAX_ADDRS {
            return Err(DecodeError::TooManyAddresses);
        }
        let mut addrs = Vec::with_capacity(count);
        for _ in 0..count {
            let ip = match self.u8()? {
                FAMILY_V4 => IpAddr::V4(Ipv4Addr::from(self.array::<4>()?)),
                FAMILY_V6 => IpAddr::V6(Ipv6Addr::from(self.array::<16>()?)),
                _ => return Err(DecodeError::BadAddressFamily),
            };
            let port = u16::from_be_bytes(self.array()?);
            addrs.push(SocketAddr::new(ip, port));
        }
        Ok(addrs)
    }

    /// Succeeds only if every byte was consumed.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }
}
