//! An adaptation set (`.kad`): the labelled windows a device learns from and the windows it is
//! tested on, int8 on its generator's scale, with the seed and the number of generated windows —
//! what the host simulation hands a board so that both run the very same adaptation. Read in place,
//! every offset checked, CRC-32 at the end.
//!
//! Layout (little-endian): `KAD1`, classes u16, 2 zero bytes, window length u32, labelled count
//! u32, test count u32, generated per class u32, seed u64; then each labelled window and each test
//! window as class u16 followed by `length` int8 values; then the CRC-32 of everything before it.

use crate::kq8::CRC32;
use crate::Error;
use embedded_io::Write;

pub const MAGIC: [u8; 4] = *b"KAD1";
const HEADER: usize = 32;

/// A parsed set.
#[derive(Debug, Clone, Copy)]
pub struct AdaptSet<'a> {
    pub classes: u16,
    pub length: usize,
    pub labelled: usize,
    pub tests: usize,
    pub generated: u32,
    pub seed: u64,
    bytes: &'a [u8],
}

impl<'a> AdaptSet<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        if bytes.len() < HEADER + 4 {
            return Err(Error::Truncated {
                need: (HEADER + 4) as u32,
                have: bytes.len() as u32,
            });
        }
        if bytes[..4] != MAGIC {
            return Err(Error::BadMagic);
        }
        let u32_at = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let set = AdaptSet {
            classes: u16::from_le_bytes([bytes[4], bytes[5]]),
            length: u32_at(8) as usize,
            labelled: u32_at(12) as usize,
            tests: u32_at(16) as usize,
            generated: u32_at(20),
            seed: u32_at(24) as u64 | (u32_at(28) as u64) << 32,
            bytes,
        };
        let need = (set.labelled as u64 + set.tests as u64)
            .checked_mul(2 + set.length as u64)
            .and_then(|n| n.checked_add((HEADER + 4) as u64))
            .ok_or(Error::BadHeader { field: "length" })?;
        if need != bytes.len() as u64 {
            return Err(Error::Truncated {
                need: need.min(u32::MAX as u64) as u32,
                have: bytes.len() as u32,
            });
        }
        let body = bytes.len() - 4;
        let stored = u32_at(body);
        let computed = CRC32.checksum(&bytes[..body]);
        if stored != computed {
            return Err(Error::BadChecksum { stored, computed });
        }
        if set.classes == 0 || set.length == 0 {
            return Err(Error::BadHeader { field: "classes" });
        }
        let classes = set.classes;
        if (0..set.labelled + set.tests).any(|i| set.window(i).0 >= classes) {
            return Err(Error::BadHeader { field: "class" });
        }
        Ok(set)
    }

    /// Labelled window `i`: (class, values).
    pub fn labelled(&self, i: usize) -> (u16, &'a [i8]) {
        self.window(i.min(self.labelled.saturating_sub(1)))
    }

    /// Test window `i`: (class, values).
    pub fn test(&self, i: usize) -> (u16, &'a [i8]) {
        self.window(self.labelled + i.min(self.tests.saturating_sub(1)))
    }

    fn window(&self, i: usize) -> (u16, &'a [i8]) {
        let at = HEADER + i * (2 + self.length);
        let class = u16::from_le_bytes([self.bytes[at], self.bytes[at + 1]]);
        let v = &self.bytes[at + 2..at + 2 + self.length];
        // SAFETY: i8 and u8 have the same size and alignment; every bit pattern is valid for both.
        let v = unsafe { core::slice::from_raw_parts(v.as_ptr().cast::<i8>(), v.len()) };
        (class, v)
    }
}

/// Writes a set; `labelled` and `tests` are (class, window) pairs of `length` values each.
#[allow(clippy::too_many_arguments)]
pub fn write<W: Write>(
    out: &mut W,
    classes: u16,
    length: usize,
    generated: u32,
    seed: u64,
    labelled: &[(u16, &[i8])],
    tests: &[(u16, &[i8])],
) -> Result<(), Error> {
    if labelled.iter().chain(tests).any(|(_, w)| w.len() != length) {
        return Err(Error::BadShape {
            need: length as u32,
            have: 0,
        });
    }
    let mut crc = CRC32.digest();
    let mut put = |b: &[u8]| -> Result<(), Error> {
        crc.update(b);
        out.write_all(b).map_err(|_| Error::Write)
    };
    put(&MAGIC)?;
    put(&classes.to_le_bytes())?;
    put(&[0, 0])?;
    for v in [
        length as u32,
        labelled.len() as u32,
        tests.len() as u32,
        generated,
    ] {
        put(&v.to_le_bytes())?;
    }
    put(&seed.to_le_bytes())?;
    for (class, w) in labelled.iter().chain(tests) {
        put(&class.to_le_bytes())?;
        // SAFETY: as in `window`, i8 → u8 of the same length.
        put(unsafe { core::slice::from_raw_parts(w.as_ptr().cast::<u8>(), w.len()) })?;
    }
    let sum = crc.finalize();
    out.write_all(&sum.to_le_bytes()).map_err(|_| Error::Write)
}
