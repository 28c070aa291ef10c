//! The on-device augmenter on the committed BasicMotions generators (MLP and conv, 4 classes,
//! 6 × 100): every form of it gives the windows `Model::generate` gives, and every bad argument is
//! an error value with nothing written.

use heapless::spsc::Queue;
use keel_firmware::augment::{Augmenter, Window};
use keel_firmware::{Arena, Error, Kernel, Model};
use proptest::prelude::*;

const MLP: &[u8] = include_bytes!("../../tests/fixtures/basicmotions/generator.kq8");
const CONV: &[u8] = include_bytes!("../../tests/fixtures/basicmotions-conv/generator.kq8");
/// Values in one BasicMotions window.
const N: usize = 600;
const SEED: u64 = 11;

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

/// Window (class, index) straight from the model, for comparison.
fn direct(m: &Model, class: u16, index: u32) -> Vec<i8> {
    let mut buf = Buffers::for_model(m);
    let mut arena = buf.arena();
    m.generate(class, SEED, index, &mut arena, Kernel::Scalar)
        .unwrap()
        .to_vec()
}

#[test]
fn every_form_gives_the_models_own_windows() {
    for bytes in [MLP, CONV] {
        let m = Model::parse(bytes).unwrap();
        let mut buf = Buffers::for_model(&m);
        let mut arena = buf.arena();
        let mut aug = Augmenter::new(&m, &mut arena, Kernel::Scalar, SEED).unwrap();
        assert_eq!((aug.shape(), aug.classes()), ((6, 100), 4));
        for class in 0..4 {
            let mut w = [0i8; N];
            aug.window_i8(class, 3, &mut w).unwrap();
            let want = direct(&m, class, 3);
            assert_eq!(w[..], want[..]);
            // Real units: the model's per-channel de-normalisation of the same values.
            let mut r = [0f32; N];
            aug.window(class, 3, &mut r).unwrap();
            for (i, (&v, &q)) in r.iter().zip(&want).enumerate() {
                assert_eq!(v.to_bits(), m.to_real(i / 100, q).to_bits());
            }
        }
        // The iterator: indices in order, owned copies.
        let got: Vec<Window<N>> = aug.windows::<N>(2, 5..9).map(Result::unwrap).collect();
        assert_eq!(
            got.iter().map(|w| w.index).collect::<Vec<_>>(),
            [5, 6, 7, 8]
        );
        for w in &got {
            assert_eq!((w.class, &w.values[..]), (2, &direct(&m, 2, w.index)[..]));
        }
        // The queue: filled to its capacity, drained by the consumer, refilled from where it
        // stopped.
        let mut queue = Queue::<Window<N>, 4>::new();
        let (mut producer, mut consumer) = queue.split();
        let mut next = 10;
        assert_eq!(aug.fill(1, &mut next, &mut producer).unwrap(), 3);
        assert_eq!(next, 13);
        assert_eq!(aug.fill(1, &mut next, &mut producer).unwrap(), 0, "full");
        let first = consumer.dequeue().unwrap();
        assert_eq!(
            (first.index, &first.values[..]),
            (10, &direct(&m, 1, 10)[..])
        );
        assert_eq!(aug.fill(1, &mut next, &mut producer).unwrap(), 1);
        let rest: Vec<u32> = std::iter::from_fn(|| consumer.dequeue())
            .map(|w| w.index)
            .collect();
        assert_eq!(rest, [11, 12, 13]);
    }
}

#[test]
fn bad_arguments_are_errors_and_write_nothing() {
    let m = Model::parse(MLP).unwrap();
    // An arena short by one word is refused up front.
    let mut small = Buffers::for_model(&m);
    small.2.pop();
    let mut arena = small.arena();
    assert!(matches!(
        Augmenter::new(&m, &mut arena, Kernel::Scalar, SEED),
        Err(Error::ArenaTooSmall { .. })
    ));
    let mut buf = Buffers::for_model(&m);
    let mut arena = buf.arena();
    let mut aug = Augmenter::new(&m, &mut arena, Kernel::Scalar, SEED).unwrap();
    // A buffer of the wrong shape.
    let mut short = [7i8; N - 1];
    assert_eq!(
        aug.window_i8(0, 0, &mut short),
        Err(Error::BadShape {
            need: N as u32,
            have: N as u32 - 1
        })
    );
    assert!(short.iter().all(|&v| v == 7), "nothing written");
    let mut long = [1f32; N + 1];
    assert!(matches!(
        aug.window(0, 0, &mut long),
        Err(Error::BadShape { .. })
    ));
    assert!(long.iter().all(|&v| v == 1.0));
    // A class the model does not know.
    let mut w = [7i8; N];
    assert_eq!(
        aug.window_i8(4, 0, &mut w),
        Err(Error::BadClass {
            class: 4,
            classes: 4
        })
    );
    assert!(w.iter().all(|&v| v == 7));
    // Owned windows too small for the model: the iterator yields the error once, then ends.
    let mut it = aug.windows::<100>(0, 0..5);
    assert!(matches!(it.next(), Some(Err(Error::BadShape { .. }))));
    assert!(it.next().is_none());
    // The queue is left as it was.
    let mut queue = Queue::<Window<N>, 3>::new();
    let (mut producer, consumer) = queue.split();
    let mut next = 0;
    assert!(aug.fill(9, &mut next, &mut producer).is_err());
    assert_eq!((next, consumer.len()), (0, 0));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any class, index, seed and buffer length: a window or an error value, never a panic, and
    /// a window only when the arguments are right.
    #[test]
    fn any_argument_gives_a_window_or_an_error(
        class in 0u16..8,
        index in any::<u32>(),
        seed in any::<u64>(),
        len in 0usize..700,
    ) {
        let m = Model::parse(CONV).unwrap();
        let mut buf = Buffers::for_model(&m);
        let mut arena = buf.arena();
        let mut aug = Augmenter::new(&m, &mut arena, Kernel::Scalar, seed).unwrap();
        let mut out = vec![0i8; len];
        let r = aug.window_i8(class, index, &mut out);
        prop_assert_eq!(r.is_ok(), class < 4 && len == N);
    }
}
