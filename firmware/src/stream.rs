//! The sample stream: one checksummed frame per sample, so a host can resynchronise after noise.
//!
//! | bytes | field |
//! | --- | --- |
//! | 2 | sync `A5 4B` |
//! | 2 | class (u16 LE) |
//! | 4 | sample index within its class (u32 LE) |
//! | 2 | value count n (u16 LE) |
//! | n | int8 values, channel-major (real units via the model's output scale and de-normalisation) |
//! | 4 | CRC-32 (ISO-HDLC) of class, index, count and values |

use crate::kq8::CRC32;
use crate::Error;
use embedded_io::Write;

pub const SYNC: [u8; 2] = [0xA5, 0x4B];
/// Bytes around the values.
pub const OVERHEAD: usize = 2 + 2 + 4 + 2 + 4;

/// Writes one frame.
pub fn write_frame<W: Write>(
    out: &mut W,
    class: u16,
    index: u32,
    values: &[i8],
) -> Result<(), Error> {
    let mut head = [0u8; 10];
    head[..2].copy_from_slice(&SYNC);
    head[2..4].copy_from_slice(&class.to_le_bytes());
    head[4..8].copy_from_slice(&index.to_le_bytes());
    head[8..10].copy_from_slice(&(values.len() as u16).to_le_bytes());
    let mut crc = CRC32.digest();
    crc.update(&head[2..]);
    let mut w = |bytes: &[u8]| out.write_all(bytes).map_err(|_| Error::Write);
    w(&head)?;
    for v in values {
        let b = [*v as u8];
        crc.update(&b);
        w(&b)?;
    }
    w(&crc.finalize().to_le_bytes())
}

/// A decoded frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub class: u16,
    pub index: u32,
    pub values: &'a [u8],
}

/// Decodes the frame at the start of `bytes`; returns it and the bytes it used. `offset` is
/// only for the error (where in the whole stream `bytes` starts).
pub fn read_frame(bytes: &[u8], offset: u32) -> Result<(Frame<'_>, usize), Error> {
    let bad = Error::BadFrame { offset };
    let head = bytes.get(..10).ok_or(bad)?;
    if head[..2] != SYNC {
        return Err(bad);
    }
    let n = u16::from_le_bytes([head[8], head[9]]) as usize;
    let values = bytes.get(10..10 + n).ok_or(bad)?;
    let stored = bytes.get(10 + n..14 + n).ok_or(bad)?;
    let mut crc = CRC32.digest();
    crc.update(&head[2..]);
    crc.update(values);
    if crc.finalize().to_le_bytes() != stored {
        return Err(bad);
    }
    let frame = Frame {
        class: u16::from_le_bytes([head[2], head[3]]),
        index: u32::from_le_bytes([head[4], head[5], head[6], head[7]]),
        values,
    };
    Ok((frame, 14 + n))
}
