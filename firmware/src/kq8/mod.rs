//! The `.kq8` file: an int8 generator laid out to be read in place from flash.
//!
//! Little-endian throughout; every section starts on a 4-byte boundary.
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 4 | magic `KQ8\0` |
//! | 4 | 2 | format version (1; 2 when a layer is a convolution) |
//! | 6 | 2 | header size (64) |
//! | 8 | 4 | file size, CRC included |
//! | 12 | 2 | latent: z values per sample |
//! | 14 | 2 | classes (0: unconditional) |
//! | 16 | 2 | output channels |
//! | 18 | 2 | output length per channel (a sample is channels × length values, channel-major) |
//! | 20 | 2 | layer count |
//! | 22 | 1 | input zero point (i8) |
//! | 23 | 1 | output zero point (i8) |
//! | 24 | 4 | input scale (f32): z ≈ (q − zp) · scale |
//! | 28 | 4 | output scale (f32) |
//! | 32 | 4 | offset of the latent CDF: 255 × u32 |
//! | 36 | 4 | offset of the layer table: layer count × 32-byte entries |
//! | 40 | 4 | offset of the de-normalisation: channels × (gain f32, offset f32) |
//! | 44 | 4 | offset of the provenance text (UTF-8 JSON: source, seed, calibration) |
//! | 48 | 4 | its length |
//! | 52 | 12 | reserved, zero |
//! | size − 4 | 4 | CRC-32 (ISO-HDLC, as zlib) of every byte before it |
//!
//! A sample in real units is `gain[c] · (q − output_zp) · output_scale + offset[c]`.
//! The latent CDF holds thresholds `t[0] ≤ … ≤ t[254]`: a uniform u32 `u` draws the input level
//! `−128 + #{k : t[k] ≤ u}`, so the int8 latent follows the quantized standard normal exactly.
//!
//! A layer entry (32 bytes): kind u8 (1 dense, 2 table), activation u8 (dense: 0 none, 1 ReLU),
//! output zero point i8, flags u8 (bit 0: every shift ≤ −2, so the multiply's high word suffices
//! — checked on load), in u16, out u16, then u32 offsets of weights, bias, multipliers, shifts, a
//! u16 bias row count and 6 reserved bytes.
//! - Dense: `in` and `out` are multiples of 4 (padded with zero weights). Weights are i8 in
//!   groups of 4 output rows; each group holds `in / 4` blocks of 16 bytes: row r's 4 weights of
//!   that input block at `4r`. Bias is i32 per output, one row per class for the first layer of a
//!   conditional model (the one-hot class input folded in), with the input zero point folded in:
//!   `acc = bias + Σ w·x`. Multiplier i32 (Q31) and shift i8 per output:
//!   `y = zp + round(acc · mult / 2^(31 − shift))`, clamped to i8 (and at zp for ReLU).
//! - Table: `in == out` = width; weights point at 256 i8 entries, indexed by `x + 128`.
//! - Conv (version 2): a stride-1 "same" Conv1d whose input `[in_ch, in_len]` (channel-major) is
//!   first upsampled ×`up` (nearest) and whose output `[out_ch, out_len]` keeps the first `out_len`
//!   steps: `in` and `out` hold `in_len` and `out_len`; bytes 24–25 `in_ch`, 26–27 `out_ch`, 28
//!   the odd kernel size k, 29 `up`, 30 the input zero point (the padding's value: real zero), 31
//!   reserved; flags bit 1: input time-major, bit 2: output time-major (between two convolutions;
//!   the model's input to the first convolution and its output are channel-major). Weights, bias, multipliers and shifts are a dense layer's (bias rows 1) of
//!   `pad4(out_ch)` rows and `k · pad4(in_ch)` inputs, input index `j · pad4(in_ch) + c` for tap j
//!   and channel c (tap-major: one output step's window is contiguous in the kernel's layout).

use crate::Error;

mod write;
pub use write::{write, ConvSpec, DenseSpec, LayerSpec, Spec};

pub const MAGIC: [u8; 4] = *b"KQ8\0";
/// The newest format version; a file uses 2 only when it has a convolution, so that older
/// readers keep reading dense models.
pub const VERSION: u16 = 2;
pub const VERSION_DENSE: u16 = 1;
pub const HEADER_SIZE: usize = 64;
pub const LAYER_ENTRY_SIZE: usize = 32;
pub const CDF_ENTRIES: usize = 255;
/// Widths above this are refused: it bounds the accumulator (no i32 overflow) and the arena.
pub const MAX_WIDTH: usize = 4096;
pub const MAX_LAYERS: usize = 64;
/// A convolution's activations may be wider than a dense layer's (its accumulations are
/// `in_ch · k` long, bounded by `MAX_WIDTH`).
pub const MAX_ACTIVATION: usize = 16384;

pub const KIND_DENSE: u8 = 1;
pub const KIND_TABLE: u8 = 2;
pub const KIND_CONV: u8 = 3;
pub const ACT_NONE: u8 = 0;
pub const ACT_RELU: u8 = 1;
/// Layer flag: every requantization shift is ≤ −2 (the fast path of the DSP kernel).
pub const FLAG_HIGH_WORD: u8 = 1;
/// Conv flags: its input is time-major (`[in_len][in_ch]`, written by the convolution before it);
/// its output is time-major (read by the convolution after it). Activations between two
/// convolutions are kept time-major so one step's channels are contiguous: the next layer unpacks
/// them with word loads and this one writes a step's outputs in place, without a scatter.
pub const FLAG_IN_TIME_MAJOR: u8 = 2;
pub const FLAG_OUT_TIME_MAJOR: u8 = 4;

/// The CRC every Keel checksum uses (file and stream frames).
pub const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// The fixed header's fields, decoded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Header {
    pub version: u16,
    pub file_size: u32,
    pub latent: u16,
    pub classes: u16,
    pub channels: u16,
    pub length: u16,
    pub layer_count: u16,
    pub input_zp: i8,
    pub output_zp: i8,
    pub input_scale: f32,
    pub output_scale: f32,
    pub cdf_offset: u32,
    pub layers_offset: u32,
    pub denorm_offset: u32,
    pub meta_offset: u32,
    pub meta_len: u32,
}

impl Header {
    /// The header's 64 bytes, for the writer on the host.
    pub fn encode(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        b[0..4].copy_from_slice(&MAGIC);
        b[4..6].copy_from_slice(&self.version.to_le_bytes());
        b[6..8].copy_from_slice(&(HEADER_SIZE as u16).to_le_bytes());
        b[8..12].copy_from_slice(&self.file_size.to_le_bytes());
        b[12..14].copy_from_slice(&self.latent.to_le_bytes());
        b[14..16].copy_from_slice(&self.classes.to_le_bytes());
        b[16..18].copy_from_slice(&self.channels.to_le_bytes());
        b[18..20].copy_from_slice(&self.length.to_le_bytes());
        b[20..22].copy_from_slice(&self.layer_count.to_le_bytes());
        b[22] = self.input_zp as u8;
        b[23] = self.output_zp as u8;
        b[24..28].copy_from_slice(&self.input_scale.to_le_bytes());
        b[28..32].copy_from_slice(&self.output_scale.to_le_bytes());
        b[32..36].copy_from_slice(&self.cdf_offset.to_le_bytes());
        b[36..40].copy_from_slice(&self.layers_offset.to_le_bytes());
        b[40..44].copy_from_slice(&self.denorm_offset.to_le_bytes());
        b[44..48].copy_from_slice(&self.meta_offset.to_le_bytes());
        b[48..52].copy_from_slice(&self.meta_len.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> Result<Header, Error> {
        if b.len() < HEADER_SIZE {
            return Err(Error::Truncated {
                need: HEADER_SIZE as u32,
                have: b.len() as u32,
            });
        }
        if b[0..4] != MAGIC {
            return Err(Error::BadMagic);
        }
        let version = u16_at(b, 4);
        if version != VERSION && version != VERSION_DENSE {
            return Err(Error::UnsupportedVersion(version));
        }
        if u16_at(b, 6) as usize != HEADER_SIZE {
            return Err(Error::BadHeader {
                field: "header_size",
            });
        }
        Ok(Header {
            version,
            file_size: u32_at(b, 8),
            latent: u16_at(b, 12),
            classes: u16_at(b, 14),
            channels: u16_at(b, 16),
            length: u16_at(b, 18),
            layer_count: u16_at(b, 20),
            input_zp: b[22] as i8,
            output_zp: b[23] as i8,
            input_scale: f32::from_bits(u32_at(b, 24)),
            output_scale: f32::from_bits(u32_at(b, 28)),
            cdf_offset: u32_at(b, 32),
            layers_offset: u32_at(b, 36),
            denorm_offset: u32_at(b, 40),
            meta_offset: u32_at(b, 44),
            meta_len: u32_at(b, 48),
        })
    }

    /// Values in one sample.
    pub fn outputs(&self) -> usize {
        self.channels as usize * self.length as usize
    }
}

/// One layer-table entry, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LayerEntry {
    pub kind: u8,
    pub act: u8,
    pub out_zp: i8,
    pub flags: u8,
    pub in_dim: u16,
    pub out_dim: u16,
    pub weights_offset: u32,
    pub bias_offset: u32,
    pub mult_offset: u32,
    pub shift_offset: u32,
    pub bias_rows: u16,
    /// Conv only: channels in and out, kernel size, upsampling factor, the input's zero point.
    pub in_ch: u16,
    pub out_ch: u16,
    pub kernel: u8,
    pub up: u8,
    pub in_zp: i8,
}

impl LayerEntry {
    pub fn encode(&self) -> [u8; LAYER_ENTRY_SIZE] {
        let mut b = [0u8; LAYER_ENTRY_SIZE];
        b[0] = self.kind;
        b[1] = self.act;
        b[2] = self.out_zp as u8;
        b[3] = self.flags;
        b[4..6].copy_from_slice(&self.in_dim.to_le_bytes());
        b[6..8].copy_from_slice(&self.out_dim.to_le_bytes());
        b[8..12].copy_from_slice(&self.weights_offset.to_le_bytes());
        b[12..16].copy_from_slice(&self.bias_offset.to_le_bytes());
        b[16..20].copy_from_slice(&self.mult_offset.to_le_bytes());
        b[20..24].copy_from_slice(&self.shift_offset.to_le_bytes());
        if self.kind == KIND_CONV {
            b[24..26].copy_from_slice(&self.in_ch.to_le_bytes());
            b[26..28].copy_from_slice(&self.out_ch.to_le_bytes());
            b[28] = self.kernel;
            b[29] = self.up;
            b[30] = self.in_zp as u8;
        } else {
            b[24..26].copy_from_slice(&self.bias_rows.to_le_bytes());
        }
        b
    }

    fn decode(b: &[u8]) -> LayerEntry {
        let conv = b[0] == KIND_CONV;
        let at = |i: usize| if conv { u16_at(b, i) } else { 0 };
        LayerEntry {
            kind: b[0],
            act: b[1],
            out_zp: b[2] as i8,
            flags: b[3],
            in_dim: u16_at(b, 4),
            out_dim: u16_at(b, 6),
            weights_offset: u32_at(b, 8),
            bias_offset: u32_at(b, 12),
            mult_offset: u32_at(b, 16),
            shift_offset: u32_at(b, 20),
            bias_rows: if conv { 1 } else { u16_at(b, 24) },
            in_ch: at(24),
            out_ch: at(26),
            kernel: if conv { b[28] } else { 0 },
            up: if conv { b[29] } else { 0 },
            in_zp: if conv { b[30] as i8 } else { 0 },
        }
    }
}

/// A dense layer's views into the blob, all bounds-checked when the model was parsed.
#[derive(Debug, Clone, Copy)]
pub struct Dense<'a> {
    pub in_dim: usize,
    pub out_dim: usize,
    pub relu: bool,
    pub out_zp: i8,
    /// Every shift is ≤ −2 (verified when the model was parsed).
    pub high_word: bool,
    /// `out × in` i8 in the blocked layout above.
    pub weights: &'a [u8],
    /// `bias_rows × out` i32, little-endian.
    pub bias: &'a [u8],
    pub bias_rows: usize,
    pub mult: &'a [u8],
    pub shift: &'a [u8],
}

impl Dense<'_> {
    /// Multiply-accumulates per sample as executed (padded dims).
    pub fn macs(&self) -> usize {
        self.in_dim * self.out_dim
    }
}

/// A convolution's geometry and its weights as a dense layer of `pad4(out_ch)` rows over the
/// `pad4(in_ch · kernel)` values of one input window.
#[derive(Debug, Clone, Copy)]
pub struct Conv<'a> {
    pub in_ch: usize,
    pub in_len: usize,
    pub up: usize,
    pub kernel: usize,
    pub out_ch: usize,
    pub out_len: usize,
    /// The padding's value: the input's zero point.
    pub in_zp: i8,
    /// Input `[in_len][in_ch]` (else `[in_ch][in_len]`).
    pub in_time_major: bool,
    /// Output `[out_len][out_ch]` (else `[out_ch][out_len]`).
    pub out_time_major: bool,
    pub dense: Dense<'a>,
}

impl Conv<'_> {
    pub fn in_width(&self) -> usize {
        self.in_ch * self.in_len
    }

    pub fn out_width(&self) -> usize {
        self.out_ch * self.out_len
    }

    /// Multiply-accumulates per sample as executed (padded window and rows).
    pub fn macs(&self) -> usize {
        self.out_len * self.dense.macs()
    }

    /// Arena bytes beside its input: one output column.
    pub fn scratch(&self) -> usize {
        self.dense.out_dim
    }

    /// Words of the unpacked input: `in_len · up + k − 1` steps of `pad4(in_ch)` lanes.
    pub fn x16_words(&self) -> usize {
        (self.in_len * self.up + self.kernel - 1) * pad4(self.in_ch) / 2
    }
}

/// A layer of the int8 program.
#[derive(Debug, Clone, Copy)]
pub enum Layer<'a> {
    Dense(Dense<'a>),
    Conv(Conv<'a>),
    /// An element-wise function as a 256-entry table, indexed by `x + 128`.
    Table {
        width: usize,
        table: &'a [u8; 256],
    },
}

impl Layer<'_> {
    pub fn width(&self) -> usize {
        match self {
            Layer::Dense(d) => d.out_dim,
            Layer::Conv(c) => c.out_width(),
            Layer::Table { width, .. } => *width,
        }
    }
}

/// A parsed, fully validated `.kq8` blob. Borrowing, not copying: the weights stay in flash.
#[derive(Debug, Clone, Copy)]
pub struct Model<'a> {
    bytes: &'a [u8],
    pub header: Header,
    /// The widest activation any layer reads or writes (the arena's i8 buffers).
    pub max_width: usize,
    /// The widest dense input (the arena's unpacked i16 buffer holds `max_in / 2` words).
    pub max_in: usize,
    /// Multiply-accumulates per sample as executed.
    pub macs: usize,
}

/// The file's size against the header, and its CRC; returns where the CRC starts (the body's end).
fn check_file(bytes: &[u8], h: &Header) -> Result<usize, Error> {
    let have = bytes.len() as u32;
    if (h.file_size as usize) < HEADER_SIZE + 4 {
        return Err(Error::BadHeader { field: "file_size" });
    }
    if h.file_size > have {
        return Err(Error::Truncated {
            need: h.file_size,
            have,
        });
    }
    if h.file_size != have {
        return Err(Error::BadHeader { field: "file_size" });
    }
    let body = bytes.len() - 4;
    let stored = u32_at(bytes, body);
    let computed = CRC32.checksum(&bytes[..body]);
    if stored != computed {
        return Err(Error::BadChecksum { stored, computed });
    }
    Ok(body)
}

/// The header's sizes, and every section inside the body; the latent CDF ascending.
fn check_sections(bytes: &[u8], body: usize, h: &Header) -> Result<(), Error> {
    let bad = |field| Error::BadHeader { field };
    if h.latent == 0 || h.latent as usize > MAX_WIDTH {
        return Err(bad("latent"));
    }
    if h.channels == 0 || h.length == 0 || h.outputs() > MAX_ACTIVATION {
        return Err(bad("channels/length"));
    }
    if h.layer_count == 0 || h.layer_count as usize > MAX_LAYERS {
        return Err(bad("layer_count"));
    }
    section(body, h.cdf_offset, CDF_ENTRIES * 4).ok_or(bad("cdf_offset"))?;
    section(
        body,
        h.layers_offset,
        h.layer_count as usize * LAYER_ENTRY_SIZE,
    )
    .ok_or(bad("layers_offset"))?;
    section(body, h.denorm_offset, h.channels as usize * 8).ok_or(bad("denorm_offset"))?;
    section(body, h.meta_offset, h.meta_len as usize).ok_or(bad("meta_offset"))?;
    let cdf = &bytes[h.cdf_offset as usize..][..CDF_ENTRIES * 4];
    if cdf
        .chunks_exact(4)
        .zip(cdf.chunks_exact(4).skip(1))
        .any(|(a, b)| u32_at(a, 0) > u32_at(b, 0))
    {
        return Err(bad("cdf (not ascending)"));
    }
    Ok(())
}

/// Dense layer `i` reading an activation of `width`: its input, class rows, shifts and flags.
/// Convolution `i` reading an activation of `width` values laid out time-major or not
/// (`time_major`): its geometry and layout against the input.
fn check_conv(i: u16, c: &Conv, width: usize, time_major: bool) -> Result<(), Error> {
    let bad = |field| Error::BadLayer { layer: i, field };
    if i == 0 {
        return Err(bad("kind"));
    }
    // A time-major output is written a padded step at a time: only whole groups of 4 channels.
    if c.in_time_major != time_major || (c.out_time_major && !c.out_ch.is_multiple_of(4)) {
        return Err(bad("flags"));
    }
    // The dense layer before may have padded its output to a multiple of 4.
    if c.in_width() > width || c.in_width() + 4 <= width {
        return Err(bad("in"));
    }
    let long = c.in_len * c.up;
    if c.kernel > long {
        return Err(bad("kernel"));
    }
    if c.out_len > long {
        return Err(bad("out"));
    }
    check_requant(i, &c.dense)
}

fn check_dense(i: u16, d: &Dense, width: usize, h: &Header) -> Result<(), Error> {
    let bad = |field| Error::BadLayer { layer: i, field };
    let first = i == 0;
    let fits = if first {
        d.in_dim >= width && d.in_dim < width + 4
    } else {
        d.in_dim == width
    };
    if !fits {
        return Err(bad("in"));
    }
    let rows = if first { h.classes.max(1) as usize } else { 1 };
    if d.bias_rows != rows {
        return Err(bad("bias_rows"));
    }
    check_requant(i, d)
}

/// A layer's requantization shifts and their fast-path flag.
fn check_requant(i: u16, d: &Dense) -> Result<(), Error> {
    let bad = |field| Error::BadLayer { layer: i, field };
    // The multiplier is mult · 2^(shift − 31): shifts outside −31..=30 are nonsense (checked once
    // here; the kernels clamp them anyway).
    if d.shift.iter().any(|&s| !(-31..=30).contains(&(s as i8))) {
        return Err(bad("shift"));
    }
    if d.high_word && d.shift.iter().any(|&s| s as i8 > -2) {
        return Err(bad("flags"));
    }
    Ok(())
}

impl<'a> Model<'a> {
    /// Checks the magic, version, size, CRC and every section and layer before anything is used.
    pub fn parse(bytes: &'a [u8]) -> Result<Model<'a>, Error> {
        let h = Header::decode(bytes)?;
        let body = check_file(bytes, &h)?;
        check_sections(bytes, body, &h)?;
        let mut model = Model {
            bytes: &bytes[..body],
            header: h,
            max_width: 0,
            max_in: 0,
            macs: 0,
        };
        let mut width = h.latent as usize;
        // The layout of the current activation: time-major only between two convolutions.
        let mut time_major = false;
        model.max_width = width;
        for i in 0..h.layer_count {
            let layer = model.layer(i)?;
            match layer {
                Layer::Dense(d) => {
                    if time_major {
                        return Err(Error::BadLayer {
                            layer: i,
                            field: "flags",
                        });
                    }
                    check_dense(i, &d, width, &h)?;
                    model.max_in = model.max_in.max(d.in_dim);
                    // The padded input lives in the same buffers as the activations.
                    model.max_width = model.max_width.max(d.in_dim);
                    model.macs += d.macs();
                }
                Layer::Conv(c) => {
                    check_conv(i, &c, width, time_major)?;
                    time_major = c.out_time_major;
                    model.max_in = model.max_in.max(2 * c.x16_words());
                    // The output column sits in the input's buffer, after the input.
                    model.max_width = model.max_width.max(c.in_width() + c.scratch());
                    model.macs += c.macs();
                }
                Layer::Table { width: w, .. } => {
                    if i == 0 || w != width {
                        return Err(Error::BadLayer {
                            layer: i,
                            field: "in",
                        });
                    }
                }
            }
            width = layer.width();
            model.max_width = model.max_width.max(width);
        }
        if width < h.outputs() || width >= h.outputs() + 4 || time_major {
            return Err(Error::BadLayer {
                layer: h.layer_count - 1,
                field: "out",
            });
        }
        Ok(model)
    }

    /// Layer `i`, its slices bounds-checked (again: cheap, and no index can go wrong).
    pub fn layer(&self, i: u16) -> Result<Layer<'a>, Error> {
        let h = &self.header;
        if i >= h.layer_count {
            return Err(Error::BadLayer {
                layer: i,
                field: "index",
            });
        }
        let at = h.layers_offset as usize + i as usize * LAYER_ENTRY_SIZE;
        let raw = self
            .bytes
            .get(at..at + LAYER_ENTRY_SIZE)
            .ok_or(Error::BadLayer {
                layer: i,
                field: "entry",
            })?;
        let e = LayerEntry::decode(raw);
        let bad = |field| Error::BadLayer { layer: i, field };
        let (n_in, n_out) = (e.in_dim as usize, e.out_dim as usize);
        let body = self.bytes.len();
        let slice = |off: u32, len: usize, field| {
            section(body, off, len)
                .map(|r| &self.bytes[r])
                .ok_or(bad(field))
        };
        // Dense weights, bias, multipliers and shifts of `n_in` inputs and `n_out` rows.
        let dense = |n_in: usize, n_out: usize, rows: usize| -> Result<Dense<'a>, Error> {
            if n_in == 0 || n_in > MAX_WIDTH || !n_in.is_multiple_of(4) {
                return Err(bad("in"));
            }
            if n_out == 0 || n_out > MAX_WIDTH || !n_out.is_multiple_of(4) {
                return Err(bad("out"));
            }
            if e.act > ACT_RELU {
                return Err(bad("activation"));
            }
            if rows == 0 {
                return Err(bad("bias_rows"));
            }
            Ok(Dense {
                in_dim: n_in,
                out_dim: n_out,
                relu: e.act == ACT_RELU,
                out_zp: e.out_zp,
                high_word: e.flags & FLAG_HIGH_WORD != 0,
                weights: slice(e.weights_offset, n_in * n_out, "weights_offset")?,
                bias: slice(e.bias_offset, rows * n_out * 4, "bias_offset")?,
                bias_rows: rows,
                mult: slice(e.mult_offset, n_out * 4, "mult_offset")?,
                shift: slice(e.shift_offset, n_out, "shift_offset")?,
            })
        };
        match e.kind {
            KIND_DENSE => Ok(Layer::Dense(dense(n_in, n_out, e.bias_rows as usize)?)),
            KIND_CONV if h.version >= 2 => {
                let (in_ch, out_ch) = (e.in_ch as usize, e.out_ch as usize);
                let (k, up) = (e.kernel as usize, e.up as usize);
                if k % 2 == 0 {
                    return Err(bad("kernel"));
                }
                if up == 0 {
                    return Err(bad("up"));
                }
                let fits = |ch: usize, len: usize| ch > 0 && len > 0 && ch * len <= MAX_ACTIVATION;
                if !fits(in_ch, n_in) {
                    return Err(bad("in"));
                }
                if !fits(out_ch, n_out) {
                    return Err(bad("out"));
                }
                if k * pad4(in_ch) > MAX_WIDTH {
                    return Err(bad("kernel"));
                }
                let d = dense(k * pad4(in_ch), pad4(out_ch), 1)?;
                Ok(Layer::Conv(Conv {
                    in_ch,
                    in_len: n_in,
                    up,
                    kernel: k,
                    out_ch,
                    out_len: n_out,
                    in_zp: e.in_zp,
                    in_time_major: e.flags & FLAG_IN_TIME_MAJOR != 0,
                    out_time_major: e.flags & FLAG_OUT_TIME_MAJOR != 0,
                    dense: d,
                }))
            }
            KIND_TABLE => {
                if n_in != n_out {
                    return Err(bad("out"));
                }
                if n_in == 0 || n_in > MAX_ACTIVATION {
                    return Err(bad("in"));
                }
                let r = section(body, e.weights_offset, 256).ok_or(bad("weights_offset"))?;
                let table: &[u8; 256] = self.bytes[r]
                    .try_into()
                    .map_err(|_| bad("weights_offset"))?;
                Ok(Layer::Table { width: n_in, table })
            }
            _ => Err(bad("kind")),
        }
    }

    /// Threshold `k` of the latent CDF.
    pub fn cdf(&self, k: usize) -> u32 {
        let at = self.header.cdf_offset as usize + 4 * k.min(CDF_ENTRIES - 1);
        self.bytes
            .get(at..at + 4)
            .map_or(u32::MAX, |b| u32_at(b, 0))
    }

    /// De-normalisation of channel `c`: (gain, offset) with real = gain · dequantized + offset.
    pub fn denorm(&self, c: usize) -> (f32, f32) {
        let at = self.header.denorm_offset as usize + 8 * c;
        match self.bytes.get(at..at + 8) {
            Some(b) => (f32::from_bits(u32_at(b, 0)), f32::from_bits(u32_at(b, 4))),
            None => (1.0, 0.0),
        }
    }

    /// The provenance text (UTF-8 JSON written by the quantizer).
    pub fn meta(&self) -> &'a [u8] {
        let h = &self.header;
        section(self.bytes.len(), h.meta_offset, h.meta_len as usize)
            .map_or(&[], |r| &self.bytes[r])
    }

    /// A real value of channel `c` on the generator's int8 scale (the inverse of
    /// [`Model::to_real`], rounded half away from zero, saturated): how a device puts its own
    /// sensor windows beside generated ones.
    pub fn quantize(&self, c: usize, v: f32) -> i8 {
        let (gain, offset) = self.denorm(c);
        let x = (v - offset) / gain / self.header.output_scale;
        // No libm on the device: round by hand (`as` saturates, NaN becomes 0).
        let r = if x >= 0.0 { x + 0.5 } else { x - 0.5 } as i32;
        r.saturating_add(self.header.output_zp as i32)
            .clamp(-128, 127) as i8
    }

    /// Sample value `q` of channel `c` in real units.
    pub fn to_real(&self, c: usize, q: i8) -> f32 {
        let (gain, offset) = self.denorm(c);
        gain * ((q as i32 - self.header.output_zp as i32) as f32 * self.header.output_scale)
            + offset
    }
}

pub(crate) fn pad4(n: usize) -> usize {
    n.div_ceil(4) * 4
}

/// The byte range `off .. off + len` when it lies inside `0 .. body`.
fn section(body: usize, off: u32, len: usize) -> Option<core::ops::Range<usize>> {
    let start = off as usize;
    let end = start.checked_add(len)?;
    (start >= HEADER_SIZE && end <= body).then_some(start..end)
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
