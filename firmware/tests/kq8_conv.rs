//! Convolution layers (`.kq8` version 2): written, read back and run against a plain computation;
//! lying geometry refused with an error value, never a panic.

use keel_firmware::kq8::{self, ConvSpec, DenseSpec, LayerSpec, Spec, CDF_ENTRIES};
use keel_firmware::{latent, Arena, Error, Kernel, Model};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

const CLASSES: u16 = 2;
const LATENT: u16 = 5;
const IN_ZP: i8 = 1;

/// One layer's weights in dense form (`rows × cols`), bias, requantization and output zero point.
struct Weights {
    rows: usize,
    cols: usize,
    w: Vec<i8>,
    bias: Vec<i32>,
    mult: Vec<i32>,
    shift: Vec<i8>,
    zp: i8,
}

fn weights(rng: &mut Pcg64Mcg, rows: usize, cols: usize, bias_rows: usize) -> Weights {
    Weights {
        rows,
        cols,
        w: (0..rows * cols).map(|_| rng.random::<i8>() / 2).collect(),
        bias: (0..bias_rows * rows)
            .map(|_| rng.random_range(-3000..3000))
            .collect(),
        mult: (0..rows)
            .map(|_| rng.random_range(1 << 30..i32::MAX))
            .collect(),
        shift: (0..rows).map(|_| rng.random_range(-9..-6)).collect(),
        zp: rng.random_range(-10..10),
    }
}

/// Latent 5 → dense to 2 channels × 3 steps (padded to 8) + ReLU → conv ↑2, k3 to 4 × 6 + ReLU →
/// table → conv k5 to 2 × 6, cropped to 5 steps.
struct Program {
    layers: [Weights; 3],
    table: [i8; 256],
    cdf: [u32; CDF_ENTRIES],
}

fn program(seed: u64) -> Program {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    // The padded channels' weights are zero, as the quantizer writes them.
    let pad_channels = |mut w: Weights, in_ch: usize| {
        for (i, v) in w.w.iter_mut().enumerate() {
            if i % w.cols % 4 >= in_ch {
                *v = 0;
            }
        }
        w
    };
    let mut table = [0i8; 256];
    for (k, t) in table.iter_mut().enumerate() {
        *t = ((k as i32 - 128) * 3 / 4) as i8;
    }
    let mut cdf = [0u32; CDF_ENTRIES];
    for (k, t) in cdf.iter_mut().enumerate() {
        *t = ((k as f64 + 1.0) / 256.0 * u32::MAX as f64) as u32;
    }
    Program {
        layers: [
            weights(&mut rng, 8, 8, CLASSES as usize),
            // Windows are k taps × channels padded to 4: 3 × 4 and 5 × 4 inputs.
            pad_channels(weights(&mut rng, 4, 12, 1), 2),
            weights(&mut rng, 4, 20, 1),
        ],
        table,
        cdf,
    }
}

fn dense(w: &Weights, relu: bool) -> DenseSpec<'_> {
    DenseSpec {
        in_dim: w.cols,
        out_dim: w.rows,
        relu,
        out_zp: w.zp,
        weights: &w.w,
        bias: &w.bias,
        mult: &w.mult,
        shift: &w.shift,
    }
}

/// (in_ch, in_len, up, kernel, out_ch, out_len) of the two convolutions.
const GEOMETRY: [(usize, usize, usize, usize, usize, usize); 2] =
    [(2, 3, 2, 3, 4, 6), (4, 6, 1, 5, 2, 5)];

fn write(p: &Program, edit: impl Fn(&mut [LayerSpec])) -> Vec<u8> {
    write_with(p, false, edit)
}

/// `time_major`: the activation between the two convolutions is kept time-major.
fn write_with(p: &Program, time_major: bool, edit: impl Fn(&mut [LayerSpec])) -> Vec<u8> {
    let conv = |i: usize, in_zp: i8, relu: bool| {
        let (in_ch, in_len, up, kernel, out_ch, out_len) = GEOMETRY[i];
        LayerSpec::Conv(ConvSpec {
            in_ch,
            in_len,
            up,
            kernel,
            out_ch,
            out_len,
            in_zp,
            in_time_major: time_major && i == 1,
            out_time_major: time_major && i == 0,
            dense: dense(&p.layers[i + 1], relu),
        })
    };
    let mut layers = [
        LayerSpec::Dense(dense(&p.layers[0], true)),
        conv(0, p.layers[0].zp, true),
        LayerSpec::Table {
            width: 24,
            table: &p.table,
        },
        conv(1, IN_ZP, false),
    ];
    edit(&mut layers);
    seal(p, &layers, 5, p.layers[2].zp)
}

/// The `.kq8` of `layers` with the test's header: 2 output channels of `length` steps.
fn seal(p: &Program, layers: &[LayerSpec], length: u16, output_zp: i8) -> Vec<u8> {
    let spec = Spec {
        latent: LATENT,
        classes: CLASSES,
        channels: 2,
        length,
        input_zp: 0,
        output_zp,
        input_scale: 0.03,
        output_scale: 0.01,
        cdf: &p.cdf,
        denorm: &[(1.0, 0.0); 2],
        meta: b"{}",
        layers,
    };
    let mut out = Vec::new();
    kq8::write(&mut out, &spec).unwrap();
    out
}

fn requant(w: &Weights, r: usize, acc: i64, relu: bool) -> i8 {
    let total = 31 - w.shift[r] as i32;
    let v = ((acc * w.mult[r] as i64) + (1i64 << (total - 1))) >> total;
    let lo = if relu { w.zp as i64 } else { -128 };
    (v + w.zp as i64).clamp(lo, 127) as i8
}

/// The same program computed the obvious way: explicit upsampling, padding and crop.
fn reference(p: &Program, m: &Model, class: u16, seed: u64, index: u32, table_zp: i8) -> Vec<i8> {
    let mut rng = latent::sample_rng(seed, class, index);
    let mut x = [0i8; 8];
    latent::fill(m, &mut rng, &mut x[..LATENT as usize]);
    let d = &p.layers[0];
    let mut h: Vec<i8> = (0..6)
        .map(|r| {
            let dot: i64 = (0..8).map(|c| d.w[r * 8 + c] as i64 * x[c] as i64).sum();
            requant(d, r, d.bias[class as usize * 8 + r] as i64 + dot, true)
        })
        .collect();
    for (i, &(in_ch, in_len, up, k, out_ch, out_len)) in GEOMETRY.iter().enumerate() {
        let w = &p.layers[i + 1];
        let zp = if i == 0 { p.layers[0].zp } else { table_zp };
        let long = in_len * up;
        let at = |c: usize, s: isize| {
            if s < 0 || s as usize >= long {
                zp
            } else {
                h[c * in_len + s as usize / up]
            }
        };
        let mut y = vec![0i8; out_ch * out_len];
        for o in 0..out_ch {
            for t in 0..out_len {
                let mut acc = w.bias[o] as i64;
                for c in 0..in_ch {
                    for j in 0..k {
                        let s = t as isize + j as isize - (k / 2) as isize;
                        acc += w.w[o * w.cols + j * 4 + c] as i64 * at(c, s) as i64;
                    }
                }
                y[o * out_len + t] = requant(w, o, acc, i == 0);
            }
        }
        h = if i == 0 {
            y.iter()
                .map(|&v| p.table[(v as i32 + 128) as usize])
                .collect()
        } else {
            y
        };
    }
    h
}

fn run(m: &Model, class: u16, index: u32, kernel: Kernel) -> Result<Vec<i8>, Error> {
    let (mut a, mut b, mut x16) = (
        vec![0i8; m.max_width],
        vec![0i8; m.max_width],
        vec![0u32; m.max_in / 2],
    );
    let mut arena = Arena {
        a: &mut a,
        b: &mut b,
        x16: &mut x16,
    };
    m.generate(class, 11, index, &mut arena, kernel)
        .map(<[i8]>::to_vec)
}

#[test]
fn conv_model_reads_back_and_matches_the_plain_computation() {
    for time_major in [false, true] {
        matches_the_plain_computation(time_major);
    }
}

fn matches_the_plain_computation(time_major: bool) {
    let p = program(1);
    let bytes = write_with(&p, time_major, |_| {});
    let m = Model::parse(&bytes).unwrap();
    assert_eq!(m.header.version, kq8::VERSION);
    // The padding of the table's output is real zero: the table's image of the conv's zero point.
    let table_zp = IN_ZP;
    let mut distinct = std::collections::HashSet::new();
    for class in 0..CLASSES {
        for index in 0..40 {
            let want = reference(&p, &m, class, 11, index, table_zp);
            for kernel in [Kernel::Scalar, Kernel::Dsp] {
                assert_eq!(
                    run(&m, class, index, kernel).unwrap(),
                    want,
                    "{class}/{index}"
                );
            }
            distinct.insert(want);
        }
    }
    assert!(distinct.len() > 20, "{}", distinct.len());
    // 8·8 dense, 6 steps × 4 rows × 12 inputs, 5 steps × 4 rows × 20 inputs (as executed).
    assert_eq!(m.macs, 64 + 6 * 48 + 5 * 80);
    assert_eq!(
        m.layer(1)
            .map(|l| matches!(l, kq8::Layer::Conv(c) if c.out_time_major == time_major)),
        Ok(true)
    );
}

#[test]
fn dense_models_stay_version_1_for_older_readers() {
    let p = program(2);
    let layers = [LayerSpec::Dense(dense(&p.layers[0], false))];
    let bytes = seal(&p, &layers, 4, 0);
    let m = Model::parse(&bytes).unwrap();
    assert_eq!(m.header.version, kq8::VERSION_DENSE);
    assert_eq!(run(&m, 1, 0, Kernel::Scalar).unwrap().len(), 8);
}

/// Re-seals `bytes` with a valid CRC after an edit.
fn reseal(mut bytes: Vec<u8>) -> Vec<u8> {
    let body = bytes.len() - 4;
    let crc = kq8::CRC32.checksum(&bytes[..body]);
    bytes[body..].copy_from_slice(&crc.to_le_bytes());
    bytes
}

/// Byte `at` of layer `layer`'s table entry.
fn entry_byte(bytes: &[u8], layer: usize, at: usize) -> usize {
    let table = u32::from_le_bytes(bytes[36..40].try_into().unwrap()) as usize;
    table + layer * kq8::LAYER_ENTRY_SIZE + at
}

#[test]
fn lying_conv_geometry_is_refused_naming_the_field() {
    let good = write(&program(3), |_| {});
    let edit = |layer: usize, at: usize, v: u8| {
        let mut b = good.clone();
        let i = entry_byte(&b, layer, at);
        b[i] = v;
        Model::parse(&reseal(b)).unwrap_err()
    };
    let bad = |layer, field| Error::BadLayer { layer, field };
    // in_len 3 → 9: more input than the dense layer before produced.
    assert_eq!(edit(1, 4, 9), bad(1, "in"));
    // out_len 5 → 7: more steps than the (not upsampled) input has.
    assert_eq!(edit(3, 6, 7), bad(3, "out"));
    // Kernel 5 → 7, longer than the 6-step input; 5 → 4, even.
    assert_eq!(edit(3, 28, 7), bad(3, "kernel"));
    assert_eq!(edit(3, 28, 4), bad(3, "kernel"));
    // Upsampling 0.
    assert_eq!(edit(1, 29, 0), bad(1, "up"));
    // A time-major input after a dense layer (flags byte 3), or a time-major model output.
    assert_eq!(edit(1, 3, kq8::FLAG_IN_TIME_MAJOR), bad(1, "flags"));
    assert_eq!(edit(3, 3, kq8::FLAG_OUT_TIME_MAJOR), bad(3, "flags"));
    // An unknown layer kind.
    assert_eq!(edit(1, 0, 9), bad(1, "kind"));
    // A convolution in a version-1 file, which cannot have one.
    let mut v1 = good.clone();
    v1[4] = 1;
    assert_eq!(Model::parse(&reseal(v1)).unwrap_err(), bad(1, "kind"));
    let mut v3 = good.clone();
    v3[4] = 3;
    assert_eq!(
        Model::parse(&reseal(v3)).unwrap_err(),
        Error::UnsupportedVersion(3)
    );
}

#[test]
fn random_lies_in_a_conv_model_never_panic() {
    let good = write(&program(4), |_| {});
    let mut rng = Pcg64Mcg::seed_from_u64(4);
    let entries = entry_byte(&good, 0, 0);
    let mut refused = 0;
    for _ in 0..20_000 {
        let mut b = good.clone();
        for _ in 0..rng.random_range(1..4) {
            let at = rng.random_range(entries..entries + 4 * kq8::LAYER_ENTRY_SIZE);
            b[at] = rng.random();
        }
        match Model::parse(&reseal(b)) {
            Err(_) => refused += 1,
            Ok(m) => {
                for class in 0..m.header.classes.clamp(1, 3) {
                    let _ = run(&m, class, 0, Kernel::Scalar);
                }
            }
        }
    }
    assert!(refused > 1000, "{refused}");
}
