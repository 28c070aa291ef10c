//! The `.kq8` writer and reader, and the int8 program against a plain re-computation.

use keel_firmware::kq8::{self, DenseSpec, LayerSpec, Spec, CDF_ENTRIES};
use keel_firmware::{latent, stream, Arena, Error, Kernel, Model};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;

/// A random but well-formed program: conditional first layer, ReLU, a table, a plain output.
struct Owned {
    dims: Vec<(usize, usize)>,
    weights: Vec<Vec<i8>>,
    bias: Vec<Vec<i32>>,
    mult: Vec<Vec<i32>>,
    shift: Vec<Vec<i8>>,
    zp: Vec<i8>,
    table: [i8; 256],
    cdf: [u32; CDF_ENTRIES],
}

const CLASSES: u16 = 3;
const LATENT: u16 = 5;

fn owned(seed: u64) -> Owned {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    let dims = vec![(8, 12), (12, 16), (16, 4)];
    let mut o = Owned {
        dims: dims.clone(),
        weights: vec![],
        bias: vec![],
        mult: vec![],
        shift: vec![],
        zp: vec![],
        table: [0; 256],
        cdf: [0; CDF_ENTRIES],
    };
    for (i, &(n_in, n_out)) in dims.iter().enumerate() {
        let rows = if i == 0 { CLASSES as usize } else { 1 };
        o.weights
            .push((0..n_in * n_out).map(|_| rng.random::<i8>()).collect());
        o.bias.push(
            (0..rows * n_out)
                .map(|_| rng.random_range(-5000..5000))
                .collect(),
        );
        o.mult.push(
            (0..n_out)
                .map(|_| rng.random_range(1 << 30..i32::MAX))
                .collect(),
        );
        o.shift
            .push((0..n_out).map(|_| rng.random_range(-8..-5)).collect());
        o.zp.push(rng.random_range(-20..20));
    }
    for (k, t) in o.table.iter_mut().enumerate() {
        *t = ((k as i32 - 128) / 2) as i8;
    }
    // A coarse normal-ish CDF: thresholds spread over the u32 range, ascending.
    for (k, t) in o.cdf.iter_mut().enumerate() {
        let p = (k as f64 + 1.0) / 256.0;
        *t = (p * p * (3.0 - 2.0 * p) * u32::MAX as f64) as u32;
    }
    o
}

fn write(o: &Owned) -> Vec<u8> {
    let dense = |i: usize, relu| {
        LayerSpec::Dense(DenseSpec {
            in_dim: o.dims[i].0,
            out_dim: o.dims[i].1,
            relu,
            out_zp: o.zp[i],
            weights: &o.weights[i],
            bias: &o.bias[i],
            mult: &o.mult[i],
            shift: &o.shift[i],
        })
    };
    let layers = [
        dense(0, true),
        dense(1, false),
        LayerSpec::Table {
            width: 16,
            table: &o.table,
        },
        dense(2, false),
    ];
    let spec = Spec {
        latent: LATENT,
        classes: CLASSES,
        channels: 3,
        length: 1,
        input_zp: 1,
        output_zp: o.zp[2],
        input_scale: 0.03,
        output_scale: 0.01,
        cdf: &o.cdf,
        denorm: &[(2.0, 1.0), (1.0, 0.0), (0.5, -3.0)],
        meta: br#"{"test":true}"#,
        layers: &layers,
    };
    let mut out = Vec::new();
    let n = kq8::write(&mut out, &spec).unwrap();
    assert_eq!(n, out.len());
    out
}

/// The same program computed the obvious way: row-major weights, i64 sums.
fn reference(o: &Owned, m: &Model, class: u16, seed: u64, index: u32) -> Vec<i8> {
    let mut rng = latent::sample_rng(seed, class, index);
    let mut x = vec![0i8; LATENT as usize];
    latent::fill(m, &mut rng, &mut x);
    x.resize(8, 1); // padded with the input zero point
    for i in 0..3 {
        let (n_in, n_out) = o.dims[i];
        let row = if i == 0 { class as usize } else { 0 };
        x = (0..n_out)
            .map(|r| {
                let dot: i64 = (0..n_in)
                    .map(|c| o.weights[i][r * n_in + c] as i64 * x[c] as i64)
                    .sum();
                let acc = (o.bias[i][row * n_out + r] as i64 + dot) as i32;
                let total = 31 - o.shift[i][r] as i32;
                let v = ((acc as i64 * o.mult[i][r] as i64) + (1i64 << (total - 1))) >> total;
                let lo = if i == 0 { o.zp[i] as i64 } else { -128 };
                (v + o.zp[i] as i64).clamp(lo, 127) as i8
            })
            .collect();
        if i == 1 {
            x = x
                .iter()
                .map(|&v| o.table[(v as i32 + 128) as usize])
                .collect();
        }
    }
    x.truncate(3);
    x
}

/// Owned buffers for a model's arena (the host has an allocator; the device uses statics).
struct Buffers(Vec<i8>, Vec<i8>, Vec<u32>);

impl Buffers {
    fn arena(&mut self) -> Arena<'_> {
        Arena {
            a: &mut self.0,
            b: &mut self.1,
            x16: &mut self.2,
        }
    }
}

fn arena_for(m: &Model) -> Buffers {
    Buffers(
        vec![0; m.max_width],
        vec![0; m.max_width],
        vec![0; m.max_in / 2],
    )
}

#[test]
fn written_model_reads_back_and_matches_the_plain_computation() {
    let o = owned(1);
    let bytes = write(&o);
    let m = Model::parse(&bytes).unwrap();
    assert_eq!(
        (m.header.latent, m.header.classes, m.header.outputs()),
        (LATENT, CLASSES, 3)
    );
    assert_eq!(
        (m.max_width, m.max_in, m.macs),
        (16, 16, 8 * 12 + 12 * 16 + 16 * 4)
    );
    assert_eq!(m.meta(), br#"{"test":true}"#);
    assert_eq!(m.denorm(2), (0.5, -3.0));
    let mut buffers = arena_for(&m);
    let mut arena = buffers.arena();
    let mut distinct = std::collections::HashSet::new();
    for class in 0..CLASSES {
        for index in 0..50 {
            let want = reference(&o, &m, class, 7, index);
            for kernel in [Kernel::Scalar, Kernel::Dsp] {
                let got = m
                    .generate(class, 7, index, &mut arena, kernel)
                    .unwrap()
                    .to_vec();
                assert_eq!(got, want, "class {class} index {index}");
            }
            distinct.insert(want);
        }
    }
    // Not a constant program: the samples differ.
    assert!(distinct.len() > 100, "{}", distinct.len());
}

#[test]
fn same_seed_same_sample_and_other_seeds_differ() {
    let bytes = write(&owned(2));
    let m = Model::parse(&bytes).unwrap();
    let mut buffers = arena_for(&m);
    let mut arena = buffers.arena();
    let s1 = m
        .generate(1, 42, 9, &mut arena, Kernel::best())
        .unwrap()
        .to_vec();
    let _ = m.generate(2, 43, 1, &mut arena, Kernel::best()).unwrap();
    let s2 = m
        .generate(1, 42, 9, &mut arena, Kernel::best())
        .unwrap()
        .to_vec();
    assert_eq!(s1, s2);
    let others: Vec<Vec<i8>> = (0..20)
        .map(|s| {
            m.generate(1, 100 + s, 9, &mut arena, Kernel::best())
                .unwrap()
                .to_vec()
        })
        .collect();
    assert!(others.iter().any(|o| *o != s1));
}

#[test]
fn bad_arguments_are_errors() {
    let bytes = write(&owned(3));
    let m = Model::parse(&bytes).unwrap();
    let mut buffers = arena_for(&m);
    let mut arena = buffers.arena();
    assert_eq!(
        m.generate(CLASSES, 0, 0, &mut arena, Kernel::Scalar)
            .unwrap_err(),
        Error::BadClass {
            class: CLASSES,
            classes: CLASSES
        }
    );
    let (mut a, mut b, mut x16) = (vec![0i8; 8], vec![0i8; 8], vec![0u32; 8]);
    let mut small = Arena {
        a: &mut a,
        b: &mut b,
        x16: &mut x16,
    };
    assert!(matches!(
        m.generate(0, 0, 0, &mut small, Kernel::Scalar),
        Err(Error::ArenaTooSmall { .. })
    ));
}

#[test]
fn every_truncation_and_bit_flip_is_refused() {
    let bytes = write(&owned(4));
    for n in 0..bytes.len() {
        assert!(Model::parse(&bytes[..n]).is_err(), "truncated to {n}");
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        Model::parse(&longer).unwrap_err(),
        Error::BadHeader { field: "file_size" }
    );
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut bad = bytes.clone();
            bad[i] ^= 1 << bit;
            assert!(Model::parse(&bad).is_err(), "byte {i} bit {bit}");
        }
    }
    let mut v3 = bytes.clone();
    v3[4] = 3;
    assert_eq!(Model::parse(&v3).unwrap_err(), Error::UnsupportedVersion(3));
    assert_eq!(
        Model::parse(b"not a model at all").unwrap_err(),
        Error::Truncated { need: 64, have: 18 }
    );
}

/// Lying fields with a valid CRC (what a buggy writer or a malicious file does) must still be
/// caught by the bounds checks, never by a panic; whatever parses must also run.
#[test]
fn lying_fields_with_a_valid_checksum_never_panic() {
    let bytes = write(&owned(5));
    let mut rng = Pcg64Mcg::seed_from_u64(5);
    let mut refused = 0;
    for trial in 0..20_000 {
        let mut bad = bytes.clone();
        let body = bad.len() - 4;
        // Mostly the header and layer table, where the lengths and offsets live.
        let span = if trial % 4 == 0 {
            body
        } else {
            64 + 255 * 4 + 4 * 32
        };
        for _ in 0..rng.random_range(1..4) {
            let at = rng.random_range(0..span.min(body));
            bad[at] = if rng.random_bool(0.5) {
                rng.random()
            } else {
                bad[at] ^ 0x80
            };
        }
        let crc = kq8::CRC32.checksum(&bad[..body]);
        bad[body..].copy_from_slice(&crc.to_le_bytes());
        match Model::parse(&bad) {
            Err(_) => refused += 1,
            Ok(m) => {
                let mut buffers = arena_for(&m);
                let mut arena = buffers.arena();
                for class in 0..m.header.classes.clamp(1, 4) {
                    let _ = m.generate(class, 1, 2, &mut arena, Kernel::Scalar);
                }
            }
        }
    }
    assert!(refused > 1000, "{refused}");
}

#[test]
fn latent_levels_follow_the_cdf() {
    let o = owned(6);
    let bytes = write(&o);
    let m = Model::parse(&bytes).unwrap();
    let mut counts = [0u32; 256];
    let n = 200_000u32;
    for index in 0..n / 5 {
        let mut rng = latent::sample_rng(3, 0, index);
        let mut z = [0i8; 5];
        latent::fill(&m, &mut rng, &mut z);
        for v in z {
            counts[(v as i32 + 128) as usize] += 1;
        }
    }
    // Expected probability of level k: (t[k] − t[k−1]) / 2^32.
    let edge = |k: usize| {
        if k == 0 {
            0.0
        } else if k == 256 {
            4294967296.0
        } else {
            o.cdf[k - 1] as f64
        }
    };
    for (k, &count) in counts.iter().enumerate() {
        let p = (edge(k + 1) - edge(k)) / 4294967296.0;
        let want = p * n as f64;
        let sd = (want * (1.0 - p)).sqrt().max(1.0);
        assert!(
            (count as f64 - want).abs() < 5.0 * sd,
            "level {k}: {count} vs {want:.1}"
        );
    }
}

#[test]
fn frames_round_trip_and_corruption_is_caught() {
    let mut out = Vec::new();
    stream::write_frame(&mut out, 2, 77, &[1, -2, 3]).unwrap();
    stream::write_frame(&mut out, 0, 1, &[-128, 127]).unwrap();
    let (f, used) = stream::read_frame(&out, 0).unwrap();
    assert_eq!((f.class, f.index, f.values), (2, 77, &[1u8, 254, 3][..]));
    let (g, used2) = stream::read_frame(&out[used..], used as u32).unwrap();
    assert_eq!((g.class, g.index, g.values), (0, 1, &[128u8, 127][..]));
    assert_eq!(used + used2, out.len());
    for i in 0..used {
        let mut bad = out.clone();
        bad[i] ^= 0x10;
        assert!(stream::read_frame(&bad, 0).is_err(), "byte {i}");
    }
    assert_eq!(
        stream::read_frame(&out[..5], 9).unwrap_err(),
        Error::BadFrame { offset: 9 }
    );
}

/// A latent that is not a multiple of 4 feeding only narrow layers: the padded first input is
/// wider than every activation, and the arena must still hold it.
#[test]
fn padded_latent_wider_than_every_layer_fits_the_arena() {
    let cdf = owned(7).cdf;
    let weights = vec![1i8; 8 * 4];
    let (bias, mult, shift) = (vec![0i32; 4], vec![1 << 30; 4], vec![-3i8; 4]);
    let layers = [LayerSpec::Dense(DenseSpec {
        in_dim: 8,
        out_dim: 4,
        relu: false,
        out_zp: 0,
        weights: &weights,
        bias: &bias,
        mult: &mult,
        shift: &shift,
    })];
    let spec = Spec {
        latent: 5,
        classes: 0,
        channels: 4,
        length: 1,
        input_zp: 0,
        output_zp: 0,
        input_scale: 0.03,
        output_scale: 0.01,
        cdf: &cdf,
        denorm: &[(1.0, 0.0); 4],
        meta: b"",
        layers: &layers,
    };
    let mut bytes = Vec::new();
    kq8::write(&mut bytes, &spec).unwrap();
    let m = Model::parse(&bytes).unwrap();
    assert_eq!(m.max_width, 8);
    let mut buffers = arena_for(&m);
    let mut arena = buffers.arena();
    assert_eq!(
        m.generate(0, 1, 2, &mut arena, Kernel::best())
            .unwrap()
            .len(),
        4
    );
}
