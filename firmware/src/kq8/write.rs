//! The `.kq8` writer: the host's quantizer describes the program, this lays it out. No
//! allocation: it streams into any `embedded_io::Write`, computing offsets and the CRC as it goes.

use super::*;
use embedded_io::Write;

/// A dense layer to write; `weights` are row-major `out × in` (padded dims, multiples of 4).
#[derive(Debug, Clone, Copy)]
pub struct DenseSpec<'a> {
    pub in_dim: usize,
    pub out_dim: usize,
    pub relu: bool,
    pub out_zp: i8,
    pub weights: &'a [i8],
    /// `bias_rows × out`.
    pub bias: &'a [i32],
    pub mult: &'a [i32],
    pub shift: &'a [i8],
}

/// A convolution to write: geometry, and its weights as a dense layer of `pad4(out_ch)` rows over
/// `kernel · pad4(in_ch)` inputs (input index `j · pad4(in_ch) + c`).
#[derive(Debug, Clone, Copy)]
pub struct ConvSpec<'a> {
    pub in_ch: usize,
    pub in_len: usize,
    pub up: usize,
    pub kernel: usize,
    pub out_ch: usize,
    pub out_len: usize,
    pub in_zp: i8,
    /// Layouts (see `FLAG_IN_TIME_MAJOR`): time-major only between two convolutions.
    pub in_time_major: bool,
    pub out_time_major: bool,
    pub dense: DenseSpec<'a>,
}

#[derive(Debug, Clone, Copy)]
pub enum LayerSpec<'a> {
    Dense(DenseSpec<'a>),
    Conv(ConvSpec<'a>),
    Table { width: usize, table: &'a [i8; 256] },
}

/// Everything a `.kq8` holds.
#[derive(Debug, Clone, Copy)]
pub struct Spec<'a> {
    pub latent: u16,
    pub classes: u16,
    pub channels: u16,
    pub length: u16,
    pub input_zp: i8,
    pub output_zp: i8,
    pub input_scale: f32,
    pub output_scale: f32,
    pub cdf: &'a [u32; CDF_ENTRIES],
    /// Per channel: (gain, offset).
    pub denorm: &'a [(f32, f32)],
    pub meta: &'a [u8],
    pub layers: &'a [LayerSpec<'a>],
}

/// Writes `spec` as a `.kq8`; returns the file size. Inconsistent specs (dims that are not
/// multiples of 4, wrong slice lengths) are refused with the layer and field named.
pub fn write<W: Write>(out: &mut W, spec: &Spec) -> Result<usize, Error> {
    // Where everything goes.
    let cdf_offset = HEADER_SIZE;
    let layers_offset = cdf_offset + CDF_ENTRIES * 4;
    let denorm_offset = layers_offset + spec.layers.len() * LAYER_ENTRY_SIZE;
    let meta_offset = denorm_offset + spec.denorm.len() * 8;
    let meta_end = meta_offset + spec.meta.len();
    if spec.layers.len() > MAX_LAYERS {
        return Err(Error::BadHeader {
            field: "layer_count",
        });
    }
    let mut entries = [LayerEntry::default(); MAX_LAYERS];
    let mut at = pad4(meta_end);
    for (i, (layer, e)) in spec.layers.iter().zip(entries.iter_mut()).enumerate() {
        *e = entry(i as u16, layer, at)?;
        at = e.end();
    }
    let file_size = at + 4;
    let conv = spec.layers.iter().any(|l| matches!(l, LayerSpec::Conv(_)));
    let header = Header {
        version: if conv { VERSION } else { VERSION_DENSE },
        file_size: file_size as u32,
        latent: spec.latent,
        classes: spec.classes,
        channels: spec.channels,
        length: spec.length,
        layer_count: spec.layers.len() as u16,
        input_zp: spec.input_zp,
        output_zp: spec.output_zp,
        input_scale: spec.input_scale,
        output_scale: spec.output_scale,
        cdf_offset: cdf_offset as u32,
        layers_offset: layers_offset as u32,
        denorm_offset: denorm_offset as u32,
        meta_offset: meta_offset as u32,
        meta_len: spec.meta.len() as u32,
    };

    // Write it, in offset order.
    let mut w = CrcWriter {
        out,
        crc: CRC32.digest(),
    };
    w.put(&header.encode())?;
    for t in spec.cdf {
        w.put(&t.to_le_bytes())?;
    }
    for e in &entries[..spec.layers.len()] {
        w.put(&e.encode())?;
    }
    for (gain, offset) in spec.denorm {
        w.put(&gain.to_le_bytes())?;
        w.put(&offset.to_le_bytes())?;
    }
    w.put(spec.meta)?;
    w.put(&[0u8; 3][..pad4(meta_end) - meta_end])?;
    for layer in spec.layers {
        layer_data(&mut w, layer)?;
    }
    let sum = w.crc.finalize();
    w.out
        .write_all(&sum.to_le_bytes())
        .map_err(|_| Error::Write)?;
    Ok(file_size)
}

/// The output, with a CRC of everything written through `put`.
struct CrcWriter<'w, 'c, W> {
    out: &'w mut W,
    crc: crc::Digest<'c, u32>,
}

impl<W: Write> CrcWriter<'_, '_, W> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.crc.update(bytes);
        self.out.write_all(bytes).map_err(|_| Error::Write)
    }
}

/// The table entry of layer `i`, its data starting at `at`; checks the spec's sizes.
fn entry(i: u16, layer: &LayerSpec, at: usize) -> Result<LayerEntry, Error> {
    let bad = |field| Error::BadLayer { layer: i, field };
    match layer {
        LayerSpec::Dense(d) => dense_entry(i, d, at),
        LayerSpec::Conv(c) => {
            let d = &c.dense;
            let fits = |ch: usize, len: usize| ch > 0 && len > 0 && ch * len <= MAX_ACTIVATION;
            if !fits(c.in_ch, c.in_len) || !fits(c.out_ch, c.out_len) || c.up == 0 || c.up > 255 {
                return Err(bad("in"));
            }
            if c.kernel.is_multiple_of(2) || c.kernel > 255 {
                return Err(bad("kernel"));
            }
            if d.in_dim != c.kernel * pad4(c.in_ch) || d.out_dim != pad4(c.out_ch) {
                return Err(bad("weights"));
            }
            if d.bias.len() != d.out_dim {
                return Err(bad("bias"));
            }
            Ok(LayerEntry {
                kind: KIND_CONV,
                in_dim: c.in_len as u16,
                out_dim: c.out_len as u16,
                bias_rows: 1,
                in_ch: c.in_ch as u16,
                out_ch: c.out_ch as u16,
                kernel: c.kernel as u8,
                up: c.up as u8,
                in_zp: c.in_zp,
                flags: dense_entry(i, d, at)?.flags
                    | if c.in_time_major {
                        FLAG_IN_TIME_MAJOR
                    } else {
                        0
                    }
                    | if c.out_time_major {
                        FLAG_OUT_TIME_MAJOR
                    } else {
                        0
                    },
                ..dense_entry(i, d, at)?
            })
        }
        LayerSpec::Table { width, .. } => {
            if *width == 0 || *width > MAX_ACTIVATION {
                return Err(bad("in"));
            }
            Ok(LayerEntry {
                kind: KIND_TABLE,
                in_dim: *width as u16,
                out_dim: *width as u16,
                weights_offset: at as u32,
                ..LayerEntry::default()
            })
        }
    }
}

/// The entry of a dense layer (or of a convolution's weights), its data starting at `at`.
fn dense_entry(i: u16, d: &DenseSpec, at: usize) -> Result<LayerEntry, Error> {
    let bad = |field| Error::BadLayer { layer: i, field };
    let width_ok = |n: usize| n.is_multiple_of(4) && n != 0 && n <= MAX_WIDTH;
    let (n_in, n_out) = (d.in_dim, d.out_dim);
    if !width_ok(n_in) {
        return Err(bad("in"));
    }
    if !width_ok(n_out) {
        return Err(bad("out"));
    }
    if d.weights.len() != n_in * n_out {
        return Err(bad("weights"));
    }
    if d.bias.is_empty() || !d.bias.len().is_multiple_of(n_out) {
        return Err(bad("bias"));
    }
    if d.mult.len() != n_out || d.shift.len() != n_out {
        return Err(bad("mult/shift"));
    }
    Ok(LayerEntry {
        kind: KIND_DENSE,
        act: if d.relu { ACT_RELU } else { ACT_NONE },
        out_zp: d.out_zp,
        flags: if d.shift.iter().all(|&s| s <= -2) {
            FLAG_HIGH_WORD
        } else {
            0
        },
        in_dim: n_in as u16,
        out_dim: n_out as u16,
        weights_offset: at as u32,
        bias_offset: (at + n_in * n_out) as u32,
        mult_offset: (at + n_in * n_out + 4 * d.bias.len()) as u32,
        shift_offset: (at + n_in * n_out + 4 * d.bias.len() + 4 * n_out) as u32,
        bias_rows: (d.bias.len() / n_out) as u16,
        ..LayerEntry::default()
    })
}

impl LayerEntry {
    /// Where the next layer's data starts (a multiple of 4 again).
    fn end(&self) -> usize {
        match self.kind {
            KIND_DENSE => self.shift_offset as usize + self.out_dim as usize,
            KIND_CONV => self.shift_offset as usize + pad4(self.out_ch as usize),
            _ => self.weights_offset as usize + 256,
        }
    }
}

/// A layer's data: dense weights in the kernel's order, bias, multipliers and shifts; or a table.
fn layer_data<W: Write>(w: &mut CrcWriter<W>, layer: &LayerSpec) -> Result<(), Error> {
    match layer {
        LayerSpec::Dense(d) | LayerSpec::Conv(ConvSpec { dense: d, .. }) => {
            // Groups of 4 rows; per input block of 4, each row's 4 weights in turn.
            for g in 0..d.out_dim / 4 {
                for b in 0..d.in_dim / 4 {
                    for r in 0..4 {
                        let row = &d.weights[(4 * g + r) * d.in_dim..][..d.in_dim];
                        let x = &row[4 * b..4 * b + 4];
                        w.put(&[x[0] as u8, x[1] as u8, x[2] as u8, x[3] as u8])?;
                    }
                }
            }
            for v in d.bias.iter().chain(d.mult) {
                w.put(&v.to_le_bytes())?;
            }
            for s in d.shift {
                w.put(&[*s as u8])?;
            }
        }
        LayerSpec::Table { table, .. } => {
            for v in table.iter() {
                w.put(&[*v as u8])?;
            }
        }
    }
    Ok(())
}
