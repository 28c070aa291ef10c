//! The built-in mixtures, normalisation, configuration layering and the PacGAN metrics.

use keel_trainer::config::{ConfigBuilder, LossKind};
use keel_trainer::data::{builtin, Mixture, Normalizer};
use keel_trainer::eval::mode_metrics;

#[test]
fn ring8_has_eight_distinct_modes_on_the_unit_circle() {
    let m = Mixture::ring8();
    assert_eq!(m.centres.len(), 8);
    for (i, a) in m.centres.iter().enumerate() {
        assert!(((a[0] * a[0] + a[1] * a[1]).sqrt() - 1.0).abs() < 1e-12);
        for b in &m.centres[i + 1..] {
            assert!(
                ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt() > 0.7,
                "modes {a:?} and {b:?} coincide"
            );
        }
    }
    let g = Mixture::grid25();
    assert_eq!(g.centres.len(), 25);
    assert!(g.centres.contains(&[-4.0, 4.0]) && g.centres.contains(&[0.0, 0.0]));
    let ds = builtin("grid25", 1).unwrap();
    assert_eq!(ds.len(), 100_000);
    // Real data scores as real data: every mode, ~99.7 % within 3σ (the 2-D radius holds 98.9 %).
    let metrics = mode_metrics(&ds.points[..5000], &g);
    assert_eq!(metrics.modes, 25);
    assert!(metrics.hq_pct > 98.0, "{metrics:?}");
}

#[test]
fn mode_metrics_follow_the_protocol() {
    let m = Mixture::ring8();
    // Exactly on the centres, evenly: every mode, 100 % HQ, KL 0.
    let even: Vec<f32> = (0..800)
        .flat_map(|i| m.centres[i % 8].map(|v| v as f32))
        .collect();
    let r = mode_metrics(&even, &m);
    assert_eq!((r.modes, r.modes_strict, r.hq_pct), (8, 8, 100.0));
    assert!(r.reverse_kl.unwrap().abs() < 1e-12);
    // Everything on one mode: KL = ln 8.
    let one: Vec<f32> = (0..100).flat_map(|_| [1.0f32, 0.0]).collect();
    let r = mode_metrics(&one, &m);
    assert_eq!(r.modes, 1);
    assert!((r.reverse_kl.unwrap() - 8f64.ln()).abs() < 1e-12);
    // 3σ is the HQ radius: 0.029 from a centre counts, 0.031 does not; the KL is undefined without HQ.
    let r = mode_metrics(&[1.029, 0.0, 1.031, 0.0], &m);
    assert_eq!((r.modes, r.hq_pct), (1, 50.0));
    let r = mode_metrics(&[0.0, 0.0], &m);
    assert_eq!((r.modes, r.hq_pct, r.reverse_kl), (0, 0.0, None));
    // Strict coverage needs ≥ 1 % of all samples.
    let mut mostly: Vec<f32> = (0..995).flat_map(|_| [1.0f32, 0.0]).collect();
    mostly.extend((0..5).flat_map(|_| [0.0f32, 1.0]));
    let r = mode_metrics(&mostly, &m);
    assert_eq!((r.modes, r.modes_strict), (2, 1));
}

#[test]
fn normalisation_round_trips() {
    let pts = [1.0f32, 10.0, 3.0, 30.0, 5.0, 50.0];
    let n = Normalizer::fit(&pts, 2);
    let z = n.forward(&pts);
    let mean0 = (z[0] + z[2] + z[4]) / 3.0;
    assert!(mean0.abs() < 1e-6);
    for (a, b) in n.inverse(&z).iter().zip(&pts) {
        assert!((a - b).abs() < 1e-4);
    }
}

#[test]
fn configuration_layers_in_order() {
    let cfg = ConfigBuilder::new()
        .recipe("wgan-gp")
        .unwrap()
        .set("penalty.gp=3")
        .unwrap()
        .set("optim.lr_g=1")
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(cfg.loss.kind, LossKind::Wasserstein, "from the recipe");
    assert_eq!(cfg.train.n_critic, 5, "from the recipe");
    assert_eq!(cfg.penalty.gp, 3.0, "--set wins over the recipe");
    assert_eq!(cfg.optim.lr_g, 1.0, "an integer stands for a float");
    assert_eq!(cfg.optim.lr_d, 1e-4, "defaults fill the rest");
    // The resolved config written to a run reads back identically.
    let back: keel_trainer::config::TrainConfig = toml::from_str(&cfg.to_toml()).unwrap();
    assert_eq!(back, cfg);
    for r in keel_trainer::config::RECIPES {
        ConfigBuilder::new()
            .recipe(r.name)
            .unwrap()
            .build()
            .unwrap_or_else(|e| panic!("recipe {}: {e}", r.name));
    }
    let err = ConfigBuilder::new()
        .set("loss.kind=softmax")
        .unwrap()
        .build()
        .unwrap_err()
        .to_string();
    assert!(err.contains("softmax"), "{err}");
}
