//! The on-device learner: features, the nearest-class-mean head and the store, on the committed
//! BasicMotions generator's windows. Every bad argument is an error value, never a panic.

use keel_firmware::learn::{features, Features, Learner, Store, FEATURES};
use keel_firmware::{Arena, Augmenter, Error, Kernel, Model};
use proptest::prelude::*;

const MLP: &[u8] = include_bytes!("../../tests/fixtures/basicmotions/generator.kq8");
const N: usize = 600;

struct Buffers(Vec<i8>, Vec<i8>, Vec<u32>);

impl Buffers {
    fn for_model(m: &Model) -> Self {
        Buffers(
            vec![0; m.max_width],
            vec![0; m.max_width],
            vec![0; m.max_in.div_ceil(2)],
        )
    }

    fn arena(&mut self) -> Arena<'_> {
        Arena {
            a: &mut self.0,
            b: &mut self.1,
            x16: &mut self.2,
        }
    }
}

/// A 2-channel, 16-step extractor fitted on sines of two frequencies.
fn toy_features(seed: u64) -> Features {
    let mut scratch = [0i8; 32];
    Features::fit(2, 16, 0, seed, &mut scratch, &mut |i, w| {
        w.copy_from_slice(&sine(i % 2, i));
        Ok(())
    })
    .unwrap()
}

/// Class 0 slow, class 1 fast; `phase` shifts it.
fn sine(class: usize, phase: usize) -> [i8; 32] {
    let f = if class == 0 { 0.08 } else { 0.3 };
    let mut w = [0i8; 32];
    for (i, v) in w.iter_mut().enumerate() {
        let t = (i % 16) as f64 + phase as f64 * 0.37;
        *v = (90.0 * (std::f64::consts::TAU * f * t).sin()) as i8;
    }
    w
}

#[test]
fn features_are_proportions_and_depend_only_on_their_inputs() {
    let f = toy_features(3);
    let mut a = [0f32; FEATURES];
    let mut b = [0f32; FEATURES];
    f.transform(&sine(0, 1), &mut a).unwrap();
    toy_features(3).transform(&sine(0, 1), &mut b).unwrap();
    assert_eq!(a, b, "same seed and windows, same features");
    assert!(a.iter().all(|v| (0.0..=1.0).contains(v)));
    // A window at the zero point convolves to 0 everywhere: each feature is 1 or 0 by the sign
    // of its bias.
    f.transform(&[0i8; 32], &mut b).unwrap();
    assert!(b.iter().all(|&v| v == 0.0 || v == 1.0), "{:?}", &b[..8]);
    assert_ne!(a, b);
    assert_eq!(
        f.transform(&[0i8; 31], &mut b),
        Err(Error::BadShape { need: 32, have: 31 })
    );
    // Shapes the extractor cannot take.
    let mut s = [0i8; 8];
    let mut fill = |_: usize, _: &mut [i8]| Ok(());
    assert!(Features::fit(1, 8, 0, 0, &mut s, &mut fill).is_err());
    let mut s = [0i8; 33 * 16];
    assert!(Features::fit(33, 16, 0, 0, &mut s, &mut fill).is_err());
    assert_eq!(features::FEATURES, 672);
}

#[test]
fn the_head_learns_two_frequencies_from_three_windows_each() {
    let mut l = Learner::<4>::new(toy_features(1), 2).unwrap();
    for p in 0..3 {
        for c in 0..2 {
            l.add(c, &sine(c as usize, p)).unwrap();
        }
    }
    assert_eq!(l.counts(), [3, 3]);
    l.train().unwrap();
    let mut right = 0;
    for p in 10..40 {
        for c in 0..2 {
            right += usize::from(l.predict(&sine(c as usize, p)).unwrap() == c);
        }
    }
    assert!(right >= 57, "{right} of 60");
}

/// A sine of `class` buried in noise (a user's recording: few and rough).
fn noisy(class: usize, phase: usize) -> [i8; 32] {
    let mut w = sine(class, phase);
    for (i, v) in w.iter_mut().enumerate() {
        // A murmur3 finaliser of (window, step): independent noise per value.
        let mut h = ((phase * 2 + class) * 32 + i) as u32;
        h ^= h >> 16;
        h = h.wrapping_mul(0x85eb_ca6b);
        h ^= h >> 13;
        h = h.wrapping_mul(0xc2b2_ae35);
        h ^= h >> 16;
        let noise = (h >> 24) as i32 - 128;
        *v = (*v as i32 * 2 / 3 + noise * 2 / 3).clamp(-127, 127) as i8;
    }
    w
}

/// The generated windows' weight chosen, and how many of 200 fresh noisy windows the head gets
/// right at that weight and at weight 0 (real windows only in the means), trained on 3 noisy real
/// windows per class plus 10 clean generated ones a class, of `swap`ped classes (a generator that
/// lies) or not.
fn with_generated(swap: bool) -> (f32, usize, usize) {
    let mut l = Learner::<4>::new(toy_features(1), 2).unwrap();
    let real: Vec<(u16, [i8; 32])> = (0..3)
        .flat_map(|p| (0..2u16).map(move |c| (c, noisy(c as usize, p))))
        .collect();
    for (c, w) in &real {
        l.add(*c, w).unwrap();
    }
    for p in 50..60 {
        for c in 0..2u16 {
            let shown = if swap { 1 - c } else { c };
            l.add_generated(c, &sine(shown as usize, p)).unwrap();
        }
    }
    l.train().unwrap();
    let right = |l: &mut Learner<4>| {
        (10..110)
            .flat_map(|p| (0..2u16).map(move |c| (c, p)))
            .filter(|&(c, p)| l.predict(&noisy(c as usize, p)).unwrap() == c)
            .count()
    };
    let weight = l
        .choose_weight(real.iter().map(|(c, w)| (*c, &w[..])), &mut |_| {})
        .unwrap();
    assert_eq!(l.weight(), weight);
    let chosen = right(&mut l);
    l.set_weight(0.0);
    (weight, chosen, right(&mut l))
}

#[test]
fn leave_one_out_gives_lying_generated_windows_no_weight_and_honest_ones_some() {
    let (weight, chosen, real_only) = with_generated(true);
    assert_eq!(weight, 0.0, "swapped classes must not move the means");
    assert_eq!(chosen, real_only);
    let (weight, chosen, real_only) = with_generated(false);
    assert!(weight > 0.0, "honest windows are weighed in");
    assert!(
        chosen > real_only + 10,
        "{chosen} of 200 with them, {real_only} without"
    );
}

#[test]
fn learner_misuse_is_an_error() {
    assert!(matches!(
        Learner::<2>::new(toy_features(0), 3),
        Err(Error::BadClass { .. })
    ));
    let mut l = Learner::<4>::new(toy_features(0), 2).unwrap();
    assert_eq!(l.predict(&sine(0, 0)), Err(Error::NotTrained));
    let none: [(u16, &[i8]); 0] = [];
    assert_eq!(
        l.choose_weight(none.into_iter(), &mut |_| {}),
        Err(Error::NotTrained)
    );
    assert!(matches!(
        l.add_generated(5, &sine(0, 0)),
        Err(Error::BadClass { .. })
    ));
    assert_eq!(
        l.add(2, &sine(0, 0)),
        Err(Error::BadClass {
            class: 2,
            classes: 2
        })
    );
    l.add(0, &sine(0, 0)).unwrap();
    assert_eq!(l.train(), Err(Error::NoWindows { class: 1 }));
    l.add(1, &sine(1, 0)).unwrap();
    l.train().unwrap();
    assert_eq!(l.add(0, &sine(0, 1)), Err(Error::Trained));
    l.reset();
    assert_eq!(l.counts(), [0, 0]);
}

#[test]
fn the_store_refuses_what_it_cannot_keep_and_keeps_the_rest() {
    let mut s = Store::<32, 3>::new(32).unwrap();
    assert!(Store::<32, 3>::new(33).is_err());
    assert_eq!(
        s.push(0, &[1i8; 31]),
        Err(Error::BadShape { need: 32, have: 31 })
    );
    for c in 0..3 {
        s.push(c, &sine(c as usize % 2, 0)).unwrap();
    }
    assert_eq!(
        s.push(1, &sine(1, 1)),
        Err(Error::StoreFull { capacity: 3 })
    );
    assert_eq!(s.len(), 3, "a full store keeps what it holds");
    let (class, w) = s.remove(0).unwrap();
    assert_eq!((class, &w[..]), (0, &sine(0, 0)[..]));
    s.push(1, &sine(1, 1)).unwrap();
    let classes: Vec<u16> = s.iter().map(|(c, _)| c).collect();
    assert_eq!(classes, [1, 2, 1]);
    assert!(s.remove(7).is_none());
    s.clear();
    assert!(s.is_empty());
}

#[test]
fn generated_and_quantized_windows_train_the_head_the_same_way_twice() {
    let m = Model::parse(MLP).unwrap();
    let mut buf = Buffers::for_model(&m);
    let mut arena = buf.arena();
    let mut aug = Augmenter::new(&m, &mut arena, Kernel::Scalar, 5).unwrap();
    let mut scratch = [0i8; N];
    let f = aug.features(5, &mut scratch).unwrap();
    // Real-unit windows go onto the generator's scale and back within half a step.
    let mut real = [0f32; N];
    aug.window(2, 9, &mut real).unwrap();
    let mut q = [0i8; N];
    aug.quantize(&real, &mut q).unwrap();
    let mut direct = [0i8; N];
    aug.window_i8(2, 9, &mut direct).unwrap();
    assert_eq!(q, direct, "quantize inverts to_real");
    assert!(aug.quantize(&real[..10], &mut q).is_err());
    let run = |aug: &mut Augmenter| -> Vec<u16> {
        let mut l = Learner::<4>::new(f.clone(), 4).unwrap();
        let mut w = [0i8; N];
        for class in 0..4 {
            for i in 0..5 {
                aug.window_i8(class, i, &mut w).unwrap();
                l.add(class, &w).unwrap();
            }
        }
        l.train().unwrap();
        (0..4)
            .flat_map(|class| (100..105).map(move |i| (class, i)))
            .map(|(class, i)| {
                aug.window_i8(class, i, &mut w).unwrap();
                l.predict(&w).unwrap()
            })
            .collect()
    };
    let first = run(&mut aug);
    assert_eq!(first, run(&mut aug), "the same windows give the same head");
    // The generator's classes are told apart by a head trained on its own windows.
    let right = first
        .iter()
        .enumerate()
        .filter(|(i, &p)| p as usize == i / 5)
        .count();
    assert!(right >= 16, "{right} of 20: {first:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any sequence of pushes and removals: the store never holds more than its capacity, and a
    /// refused push leaves it as it was.
    #[test]
    fn the_store_never_overflows(ops in proptest::collection::vec((any::<bool>(), 0u16..4, 0usize..40), 0..60)) {
        let mut s = Store::<32, 5>::new(32).unwrap();
        for (push, class, n) in ops {
            let before = s.len();
            if push {
                let r = s.push(class, &vec![1i8; n]);
                prop_assert_eq!(r.is_ok(), n == 32 && before < 5);
                prop_assert_eq!(s.len(), before + usize::from(r.is_ok()));
            } else {
                let r = s.remove(n % 7);
                prop_assert_eq!(r.is_some(), n % 7 < before);
            }
            prop_assert!(s.len() <= 5);
        }
    }
}
