//! What a rollback changes: each kind of event has its remedy (lower learning rates, stronger
//! penalties, more instance noise, fewer critic steps, more augmentation), scaled by `WatchConfig`.

use super::events::Kind;
use crate::config::WatchConfig;
use crate::train::Trainer;

/// Changes the trainer's settings for what went wrong; returns what it changed.
pub(crate) fn remedy(w: &WatchConfig, kind: Kind, t: &mut Trainer) -> Vec<String> {
    let mut changes = Vec::new();
    let c = &mut t.cfg;
    let mut set = |name: &str, v: &mut f64, new: f64| {
        changes.push(format!("{name} {} → {}", fmt(*v), fmt(new)));
        *v = new;
    };
    let lower_lr = matches!(kind, Kind::Divergence | Kind::Oscillation | Kind::Collapse);
    let regularize = matches!(kind, Kind::Vanishing | Kind::Collapse);
    if lower_lr {
        let (g, d) = (c.optim.lr_g, c.optim.lr_d);
        set("optim.lr_g", &mut c.optim.lr_g, g * w.lr_factor);
        set("optim.lr_d", &mut c.optim.lr_d, d * w.lr_factor);
    }
    if regularize {
        let p = &mut c.penalty;
        if p.r1 == 0.0 && p.r2 == 0.0 && p.gp == 0.0 {
            set("penalty.r1", &mut p.r1, w.r1_floor);
        } else {
            for (name, v) in [
                ("penalty.r1", &mut p.r1),
                ("penalty.r2", &mut p.r2),
                ("penalty.gp", &mut p.gp),
            ] {
                if *v > 0.0 {
                    let new = *v * w.reg_factor;
                    set(name, v, new);
                }
            }
        }
    }
    if kind == Kind::Vanishing {
        if w.noise_step > 0.0 {
            let n = c.regularize.instance_noise;
            set(
                "regularize.instance_noise",
                &mut c.regularize.instance_noise,
                n + w.noise_step,
            );
        }
        if c.train.n_critic > 1 {
            changes.push(format!(
                "train.n_critic {} → {}",
                c.train.n_critic,
                c.train.n_critic - 1
            ));
            c.train.n_critic -= 1;
        }
        let p_max = c.augment.p_max;
        if let Some(a) = &mut t.augmenter {
            let new = (a.p + w.aug_step).min(p_max);
            changes.push(format!("augment p {:.2} → {new:.2}", a.p));
            a.p = new;
        }
    }
    changes
}

/// The shortest form that reads back as `v`: `5e-4`, `2.5e-4`.
fn fmt(v: f64) -> String {
    format!("{v:e}")
}
