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

#[derive(Debug, Clone, Copy)]
pub enum LayerSpec<'a> {
    Dense(DenseSpec<'a>),
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

fn pad4(n: usize) -> usize {
    n.div_ceil(4) * 4
}

/// Writes `spec` as a `.kq8`; returns the file size. Inconsistent specs (dims that are not
/// multiples of 4, wrong slice lengths) are refused with the layer and field named.
pub fn write<W: Write>(out: &mut W, spec: &Spec) -> Result<usize, Error> {
    // Where everything goes.
    let cdf_offset = HEADER_SIZE;
    let layers_offset = cdf_offset + CDF_ENTRIES * 4;
    let denorm_offset = layers_offset + spec.layers.len() * LAYER_ENTRY_SIZE;
    let meta_offset = denorm_offset + spec.denorm.len() * 8;
    let mut at = pad4(meta_offset + spec.meta.len());
    let mut entries = [LayerEntry::default(); MAX_LAYERS];
    if spec.layers.len() > MAX_LAYERS {
        return Err(Error::BadHeader {
            field: "layer_count",
        });
    }
    for (i, (layer, e)) in spec.layers.iter().zip(entries.iter_mut()).enumerate() {
        let bad = |field| Error::BadLayer {
            layer: i as u16,
            field,
        };
        match layer {
            LayerSpec::Dense(d) => {
                let (n_in, n_out) = (d.in_dim, d.out_dim);
                if n_in % 4 != 0 || n_in == 0 || n_in > MAX_WIDTH {
                    return Err(bad("in"));
                }
                if n_out % 4 != 0 || n_out == 0 || n_out > MAX_WIDTH {
                    return Err(bad("out"));
                }
                if d.weights.len() != n_in * n_out {
                    return Err(bad("weights"));
                }
                if d.bias.is_empty() || d.bias.len() % n_out != 0 {
                    return Err(bad("bias"));
                }
                if d.mult.len() != n_out || d.shift.len() != n_out {
                    return Err(bad("mult/shift"));
                }
                *e = LayerEntry {
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
                };
                at = e.shift_offset as usize + n_out; // a multiple of 4 again
            }
            LayerSpec::Table { width, .. } => {
                if width % 4 != 0 || *width == 0 || *width > MAX_WIDTH {
                    return Err(bad("in"));
                }
                *e = LayerEntry {
                    kind: KIND_TABLE,
                    in_dim: *width as u16,
                    out_dim: *width as u16,
                    weights_offset: at as u32,
                    ..LayerEntry::default()
                };
                at += 256;
            }
        }
    }
    let file_size = at + 4;
    let header = Header {
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
    let mut crc = CRC32.digest();
    let mut put = |bytes: &[u8]| {
        crc.update(bytes);
        out.write_all(bytes).map_err(|_| Error::Write)
    };
    put(&header.encode())?;
    for t in spec.cdf {
        put(&t.to_le_bytes())?;
    }
    for e in &entries[..spec.layers.len()] {
        put(&e.encode())?;
    }
    for (gain, offset) in spec.denorm {
        put(&gain.to_le_bytes())?;
        put(&offset.to_le_bytes())?;
    }
    put(spec.meta)?;
    put(&[0u8; 3][..pad4(meta_offset + spec.meta.len()) - (meta_offset + spec.meta.len())])?;
    for layer in spec.layers {
        match layer {
            LayerSpec::Dense(d) => {
                // Groups of 4 rows; per input block of 4, each row's 4 weights in turn.
                for g in 0..d.out_dim / 4 {
                    for b in 0..d.in_dim / 4 {
                        for r in 0..4 {
                            let row = &d.weights[(4 * g + r) * d.in_dim..][..d.in_dim];
                            let w = &row[4 * b..4 * b + 4];
                            put(&[w[0] as u8, w[1] as u8, w[2] as u8, w[3] as u8])?;
                        }
                    }
                }
                for v in d.bias.iter().chain(d.mult) {
                    put(&v.to_le_bytes())?;
                }
                for s in d.shift {
                    put(&[*s as u8])?;
                }
            }
            LayerSpec::Table { table, .. } => {
                for v in table.iter() {
                    put(&[*v as u8])?;
                }
            }
        }
    }
    let sum = crc.finalize();
    out.write_all(&sum.to_le_bytes())
        .map_err(|_| Error::Write)?;
    Ok(file_size)
}
