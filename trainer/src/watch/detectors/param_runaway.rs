//! Weights running away: a network's parameter norm grown more than `watch.param_growth` times
//! its value in the trusted snapshot.

use super::{Check, Detector};
use crate::watch::events::{Finding, Kind};
use crate::watch::norms;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
pub(crate) struct ParamRunaway;

impl Detector for ParamRunaway {
    fn check(&mut self, c: &Check) -> Option<Finding> {
        let now = norms(c.t);
        let (step, norms) = c.confirmed;
        let limit = c.cfg.param_growth;
        ["D", "G"].into_iter().enumerate().find_map(|(i, net)| {
            let ratio = now[i] / norms[i].max(1e-12);
            (ratio > limit).then(|| Finding {
                kind: Kind::Divergence,
                detector: format!("param-runaway-{}", net.to_lowercase()),
                value: ratio,
                threshold: limit,
                detail: format!(
                    "‖θ{net}‖ {:.3e} is {ratio:.1}× its value at step {step}",
                    now[i]
                ),
            })
        })
    }
}
