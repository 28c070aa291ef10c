//! How each ONNX op becomes part of the float program: one function per op family, registered in
//! `OPS` (as tract registers its ONNX ops in one table).

use super::{
    combine, constant, float_attr, int_attr, per_channel, Dense, Expr, Layer, Program, Val,
};
use anyhow::{anyhow, bail, Result};
use std::collections::HashMap;
use tract_onnx::data_resolver::ModelDataResolver;
use tract_onnx::pb::NodeProto;

/// A node with the values computed so far.
pub(super) struct Node<'a> {
    pub(super) proto: &'a NodeProto,
    pub(super) vals: &'a HashMap<String, Val>,
    pub(super) resolver: &'a dyn ModelDataResolver,
}

impl Node<'_> {
    fn op(&self) -> &str {
        self.proto.op_type.as_str()
    }

    /// The node's input `i`.
    fn arg(&self, i: usize) -> Result<&Val> {
        let name = self
            .proto
            .input
            .get(i)
            .ok_or_else(|| anyhow!("missing input {i}"))?;
        self.vals
            .get(name)
            .ok_or_else(|| anyhow!("input `{name}` is not computed before use"))
    }
}

type Lower = fn(&mut Program, &Node) -> Result<Val>;

/// The ops the quantizer reads, by family.
const OPS: &[(&[&str], Lower)] = &[
    (&["MatMul", "Gemm"], dense),
    (&["Add", "Sub", "Mul", "Div"], arithmetic),
    (&["BatchNormalization"], batch_norm),
    (&["Relu", "LeakyRelu", "Tanh", "Sigmoid"], activation),
    (&["Reshape", "Flatten"], reshape),
    (&["Identity", "Dropout"], identity),
    (&["Constant"], constant_op),
    (&["Concat"], concat),
];

/// What `node` computes, as far as the program is concerned (dense layers are added to `prog`).
pub(super) fn lower(prog: &mut Program, node: &Node) -> Result<Val> {
    let op = node.op();
    match OPS.iter().find(|(names, _)| names.contains(&op)) {
        Some((_, f)) => f(prog, node),
        None => {
            let handled: Vec<&str> = OPS.iter().flat_map(|(n, _)| n.iter().copied()).collect();
            bail!(
                "keel-run quantize cannot quantize the ONNX op `{op}`; it handles {} (Concat of the inputs only)",
                handled.join(", ")
            )
        }
    }
}

fn constant_op(_: &mut Program, node: &Node) -> Result<Val> {
    let t = node
        .proto
        .attribute
        .iter()
        .find(|a| a.name == "value")
        .and_then(|a| a.t.as_ref())
        .ok_or_else(|| anyhow!("Constant without a tensor `value`"))?;
    constant(node.resolver, t)
}

fn identity(_: &mut Program, node: &Node) -> Result<Val> {
    Ok(node.arg(0)?.clone())
}

fn reshape(_: &mut Program, node: &Node) -> Result<Val> {
    Ok(match node.arg(0)? {
        Val::Const { data, .. } => {
            let shape = match node.arg(1) {
                Ok(Val::Const { data: s, .. }) => s.iter().map(|&d| d.max(1.0) as usize).collect(),
                _ => vec![data.len()],
            };
            Val::Const {
                data: data.clone(),
                shape,
            }
        }
        // On an activation [batch, D] a reshape to [batch, D] (or flatten) changes nothing.
        v @ Val::Act { .. } => v.clone(),
        _ => bail!("Reshape of the class input"),
    })
}

fn concat(prog: &mut Program, node: &Node) -> Result<Val> {
    let args: Vec<&Val> = (0..node.proto.input.len())
        .map(|i| node.arg(i))
        .collect::<Result<_>>()?;
    match args.as_slice() {
        [Val::Act {
            at: 0,
            expr: Expr::X,
        }, Val::ClassInput]
            if prog.layers.is_empty() =>
        {
            Ok(Val::ZAndClass)
        }
        _ => bail!("only Concat(z, class) is supported"),
    }
}

/// MatMul and Gemm with a constant weight: a dense layer (the class input's rows become a bias per class).
fn dense(prog: &mut Program, node: &Node) -> Result<Val> {
    let (op, p) = (node.op(), node.proto);
    let x = node.arg(0)?.clone();
    let (w, shape) = match node.arg(1)? {
        Val::Const { data, shape } if shape.len() == 2 => (data.clone(), shape.clone()),
        _ => bail!("the weight is not a constant matrix"),
    };
    let trans_b = op == "Gemm" && int_attr(p, "transB") == Some(1);
    if op == "Gemm"
        && (float_attr(p, "alpha").unwrap_or(1.0) != 1.0 || int_attr(p, "transA") == Some(1))
    {
        bail!("Gemm with alpha ≠ 1 or transA");
    }
    let (k, n) = if trans_b {
        (shape[1], shape[0])
    } else {
        (shape[0], shape[1])
    };
    let at = |i: usize, o: usize| if trans_b { w[o * k + i] } else { w[i * n + o] };
    let (in_dim, class_rows) = match &x {
        Val::ZAndClass => (prog.latent, prog.classes),
        Val::Act { at, expr } => {
            prog.materialize(*at, expr)?;
            (k, 0)
        }
        _ => bail!("MatMul of the class input alone"),
    };
    if in_dim + class_rows != k {
        bail!("weight has {k} rows for {} inputs", in_dim + class_rows);
    }
    let mut d = Dense {
        in_dim,
        out_dim: n,
        w: (0..n)
            .flat_map(|o| (0..in_dim).map(move |i| (o, i)))
            .map(|(o, i)| at(i, o))
            .collect(),
        b: vec![0.0; n],
        class_w: (0..class_rows)
            .flat_map(|c| (0..n).map(move |o| (c, o)))
            .map(|(c, o)| at(in_dim + c, o))
            .collect(),
    };
    if op == "Gemm" && p.input.len() > 2 {
        let beta = float_attr(p, "beta").unwrap_or(1.0);
        let bias = per_channel(node.arg(2)?, n)?;
        d.b.iter_mut().zip(bias).for_each(|(b, c)| *b += beta * c);
    }
    prog.layers.push(Layer::Dense(d));
    Ok(Val::Act {
        at: prog.layers.len(),
        expr: Expr::X,
    })
}

/// Add, Sub, Mul, Div: a per-channel bias folds into the dense layer before it; anything else
/// element-wise on one activation becomes part of its map.
fn arithmetic(prog: &mut Program, node: &Node) -> Result<Val> {
    let op = node.op();
    let (a, b) = (node.arg(0)?.clone(), node.arg(1)?.clone());
    if op == "Add" || op == "Sub" {
        let sign = if op == "Sub" { -1.0 } else { 1.0 };
        let fold = match (&a, &b) {
            (v, c @ Val::Const { .. }) => Some((v, c)),
            (c @ Val::Const { .. }, v) if op == "Add" => Some((v, c)),
            _ => None,
        };
        if let Some((v, c)) = fold {
            if let Some(d) = prog.dense_of(v) {
                if let Ok(bias) = per_channel(c, d.out_dim) {
                    d.b.iter_mut().zip(bias).for_each(|(b, c)| *b += sign * c);
                    return Ok(v.clone());
                }
            }
        }
    }
    let act = |v: &Val| match v {
        Val::Act { at, expr } => Some((*at, expr.clone())),
        _ => None,
    };
    let scalar = |v: &Val| match v {
        Val::Const { data, .. } if data.len() == 1 => Some(data[0]),
        _ => None,
    };
    Ok(match (act(&a), act(&b), scalar(&a), scalar(&b)) {
        (Some((i, ea)), Some((j, eb)), _, _) if i == j => Val::Act {
            at: i,
            expr: combine(op, ea, eb)?,
        },
        (Some((i, e)), None, _, Some(c)) => Val::Act {
            at: i,
            expr: combine(op, e, Expr::Const(c))?,
        },
        (None, Some((i, e)), Some(c), _) => Val::Act {
            at: i,
            expr: combine(op, Expr::Const(c), e)?,
        },
        _ => bail!("{op} of these operands is not element-wise on one activation"),
    })
}

/// Inference BatchNormalization, folded into the dense layer straight before it.
fn batch_norm(prog: &mut Program, node: &Node) -> Result<Val> {
    let eps = float_attr(node.proto, "epsilon").unwrap_or(1e-5);
    let v = node.arg(0)?.clone();
    let not_after_dense = || anyhow!("BatchNormalization not straight after a dense layer");
    let n = prog.dense_of(&v).ok_or_else(not_after_dense)?.out_dim;
    let p: Vec<Vec<f32>> = (1..5)
        .map(|i| node.arg(i).and_then(|c| per_channel(c, n)))
        .collect::<Result<_>>()?;
    let d = prog.dense_of(&v).ok_or_else(not_after_dense)?;
    let params = p[0].iter().zip(&p[1]).zip(&p[2]).zip(&p[3]);
    for (o, (((gamma, beta), mean), var)) in params.enumerate() {
        let s = gamma / (var + eps).sqrt();
        d.w[o * d.in_dim..(o + 1) * d.in_dim]
            .iter_mut()
            .for_each(|w| *w *= s);
        d.b[o] = (d.b[o] - mean) * s + beta;
        for c in 0..d.class_w.len() / d.out_dim {
            d.class_w[c * d.out_dim + o] *= s;
        }
    }
    Ok(v)
}

fn activation(_: &mut Program, node: &Node) -> Result<Val> {
    let op = node.op();
    let Val::Act { at, expr: e } = node.arg(0)? else {
        bail!("{op} of a non-activation");
    };
    let expr = match op {
        "Relu" => e.clone().wrap(Expr::Relu),
        "Tanh" => e.clone().wrap(Expr::Tanh),
        "Sigmoid" => e.clone().wrap(Expr::Sigmoid),
        _ => {
            // a·x + (1 − a)·relu(x)
            let a = float_attr(node.proto, "alpha").unwrap_or(0.01);
            Expr::Add(
                Box::new(Expr::Mul(Box::new(Expr::Const(a)), Box::new(e.clone()))),
                Box::new(Expr::Mul(
                    Box::new(Expr::Const(1.0 - a)),
                    Box::new(e.clone().wrap(Expr::Relu)),
                )),
            )
        }
    };
    Ok(Val::Act { at: *at, expr })
}
