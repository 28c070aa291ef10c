//! How each ONNX op becomes part of the float program: one function per op family, registered in
//! `OPS` (as tract registers its ONNX ops in one table).

use super::{
    combine, constant, float_attr, int_attr, per_channel, Conv, Dense, Expr, Layer, Program, Val,
    View,
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
    (&["Conv"], conv),
    (&["Resize"], resize),
    (&["Shape"], shape),
    (&["Gather"], gather),
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

fn reshape(prog: &mut Program, node: &Node) -> Result<Val> {
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
        // A reshape moves no value of an activation: it changes how the next layer reads it.
        v @ Val::Act { .. } => {
            if node.op() == "Reshape" {
                prog.view = reshaped(prog.view, node.arg(1)?)?;
            } else {
                prog.view = View::flat(prog.view.channels * prog.view.length * prog.view.up);
            }
            v.clone()
        }
        // `[z, class]` viewed as one time step of z + classes channels, for the projection.
        Val::ZAndClass => Val::ZAndClass,
        _ => bail!("Reshape of the class input"),
    })
}

/// The view after reshaping to `target` (−1 or 0 for the batch, −1 for one inferred axis).
fn reshaped(view: View, target: &Val) -> Result<View> {
    let Val::Const { data, .. } = target else {
        bail!("Reshape to a shape computed from something other than constants and shapes");
    };
    let total = view.channels * view.length * view.up;
    let known: usize = data[1..]
        .iter()
        .filter(|&&d| d > 0.0)
        .map(|&d| d as usize)
        .product();
    let dims: Vec<usize> = data[1..]
        .iter()
        .map(|&d| {
            if d > 0.0 {
                d as usize
            } else {
                total / known.max(1)
            }
        })
        .collect();
    if !(2..=4).contains(&data.len()) || dims.iter().product::<usize>() != total {
        bail!("Reshape of a {total}-value activation to {data:?}");
    }
    let (channels, rest) = (dims[0], dims[1..].iter().product::<usize>());
    if view.up > 1 {
        // An upsampled view only gains or loses a trailing axis of 1.
        if channels != view.channels || data.len() == 2 {
            bail!("Reshape of an upsampled activation to {data:?}");
        }
        return Ok(View {
            rank: data.len(),
            ..view
        });
    }
    Ok(View {
        channels,
        length: rest,
        up: 1,
        rank: data.len(),
    })
}

/// The shape of an activation (or of the joint input) as a constant, −1 for the batch.
fn shape(prog: &mut Program, node: &Node) -> Result<Val> {
    let data = match node.arg(0)? {
        Val::Act { .. } => prog.view.dims(),
        Val::ZAndClass => vec![-1.0, (prog.latent + prog.classes) as f32],
        Val::Const { shape, .. } => shape.iter().map(|&d| d as f32).collect(),
        Val::ClassInput => vec![-1.0, prog.classes as f32],
    };
    Ok(Val::Const {
        shape: vec![data.len()],
        data,
    })
}

/// Gather: of constants (shape arithmetic), or the crop of a convolution's output to its first
/// steps (folded into the convolution).
fn gather(prog: &mut Program, node: &Node) -> Result<Val> {
    let axis = int_attr(node.proto, "axis").unwrap_or(0);
    let Val::Const { data: idx, .. } = node.arg(1)?.clone() else {
        bail!("Gather with computed indices");
    };
    match node.arg(0)?.clone() {
        Val::Const { data, .. } if axis == 0 => {
            let pick = |i: f32| -> Result<f32> {
                let i = if i < 0.0 { i + data.len() as f32 } else { i };
                data.get(i as usize)
                    .copied()
                    .ok_or_else(|| anyhow!("Gather index {i} out of range"))
            };
            let out: Vec<f32> = idx.iter().map(|&i| pick(i)).collect::<Result<_>>()?;
            Ok(Val::Const {
                shape: vec![out.len()],
                data: out,
            })
        }
        v @ Val::Act { .. } if axis == 2 && prog.view.rank == 3 => {
            let keep = idx.len();
            let prefix = idx.iter().enumerate().all(|(i, &j)| j == i as f32);
            let c = prog
                .conv_of(&v)
                .filter(|c| prefix && keep <= c.out_len)
                .ok_or_else(|| {
                    anyhow!(
                        "only a crop to the first steps straight after a convolution is supported"
                    )
                })?;
            c.out_len = keep;
            prog.view.length = keep;
            Ok(v)
        }
        _ => bail!("Gather on axis {axis} of this value is not supported"),
    }
}

/// Nearest upsampling along the time axis of a `[N, C, L, 1]` view, folded into the next
/// convolution's indexing.
fn resize(prog: &mut Program, node: &Node) -> Result<Val> {
    let p = node.proto;
    let attr = |name: &str| {
        p.attribute
            .iter()
            .find(|a| a.name == name)
            .map(|a| String::from_utf8_lossy(&a.s).into_owned())
    };
    let nearest = attr("mode").as_deref() == Some("nearest")
        && attr("coordinate_transformation_mode").as_deref() == Some("asymmetric")
        && matches!(attr("nearest_mode").as_deref(), Some("floor") | None);
    let v = node.arg(0)?.clone();
    let long = prog.view.length * prog.view.up;
    // Either `scales` [1, 1, f, 1] or `sizes` [f·L, 1] on axes [2, 3].
    let arg = |i: usize| match node.proto.input.get(i).filter(|n| !n.is_empty()) {
        Some(_) => match node.arg(i) {
            Ok(Val::Const { data, .. }) => Some(data.clone()),
            _ => None,
        },
        None => None,
    };
    let factor = match (arg(2), arg(3)) {
        (Some(s), None) if s.len() == 4 && s[0] == 1.0 && s[1] == 1.0 && s[3] == 1.0 => s[2],
        (None, Some(s)) if s.len() == 2 && s[1] == 1.0 => s[0] / long as f32,
        _ => 0.0,
    };
    let ok = nearest
        && matches!(v, Val::Act { .. })
        && prog.view.rank == 4
        && factor >= 1.0
        && factor.fract() == 0.0;
    if !ok {
        bail!("only nearest (asymmetric, floor) upsampling of the time axis by a whole factor is supported");
    }
    prog.view.up *= factor as usize;
    Ok(v)
}

/// Conv1d, stride 1, "same" padding, on an activation; or a full convolution over the joint input
/// viewed as one time step (the conv generator's projection), which is a dense layer.
fn conv(prog: &mut Program, node: &Node) -> Result<Val> {
    let p = node.proto;
    let ints = |name: &str| -> Vec<i64> {
        p.attribute
            .iter()
            .find(|a| a.name == name)
            .map(|a| a.ints.clone())
            .unwrap_or_default()
    };
    let (w, shape) = match node.arg(1)? {
        Val::Const { data, shape } if shape.len() == 3 => (data.clone(), shape.clone()),
        _ => bail!("the weight is not a constant [out, in, kernel] tensor"),
    };
    let (out_ch, in_ch, k) = (shape[0], shape[1], shape[2]);
    let b = match p.input.get(2).filter(|n| !n.is_empty()) {
        Some(_) => per_channel(node.arg(2)?, out_ch)?,
        None => vec![0.0; out_ch],
    };
    let ones = |v: Vec<i64>| v.iter().all(|&d| d == 1);
    if !ones(ints("strides")) || !ones(ints("dilations")) || int_attr(p, "group").unwrap_or(1) != 1
    {
        bail!("Conv with stride, dilation or groups other than 1");
    }
    let pads = ints("pads");
    let pad = pads.first().copied().unwrap_or(0);
    if pads.iter().any(|&q| q != pad) {
        bail!("Conv with asymmetric padding {pads:?}");
    }
    match node.arg(0)?.clone() {
        Val::ZAndClass if in_ch == prog.latent + prog.classes && pad as usize + 1 == k => {
            // y[o, t] = b[o] + Σ_i w[o, i, k − 1 − t] · x[i]: a dense layer to [out_ch, k].
            let at = |o: usize, i: usize, t: usize| w[(o * in_ch + i) * k + (k - 1 - t)];
            let rows = || (0..out_ch).flat_map(|o| (0..k).map(move |t| (o, t)));
            let n = out_ch * k;
            let mut class_w = vec![0f32; prog.classes * n];
            for (r, (o, t)) in rows().enumerate() {
                for c in 0..prog.classes {
                    class_w[c * n + r] = at(o, prog.latent + c, t);
                }
            }
            prog.layers.push(Layer::Dense(Dense {
                in_dim: prog.latent,
                out_dim: n,
                w: rows()
                    .flat_map(|(o, t)| (0..prog.latent).map(move |i| at(o, i, t)))
                    .collect(),
                b: rows().map(|(o, _)| b[o]).collect(),
                class_w,
            }));
            prog.view = View {
                channels: out_ch,
                length: k,
                up: 1,
                rank: 3,
            };
        }
        Val::Act { at, expr } => {
            let view = prog.view;
            if view.rank != 3 || view.channels != in_ch || k % 2 == 0 || pad as usize != k / 2 {
                bail!("Conv of a {view:?} activation with {in_ch} input channels, kernel {k}, padding {pad}: only odd kernels with \"same\" padding are supported");
            }
            prog.materialize(at, &expr)?;
            let out_len = view.length * view.up;
            prog.layers.push(Layer::Conv(Conv {
                in_ch,
                in_len: view.length,
                up: view.up,
                kernel: k,
                out_ch,
                out_len,
                w,
                b,
            }));
            prog.view = View {
                channels: out_ch,
                length: out_len,
                up: 1,
                rank: 3,
            };
        }
        _ => bail!("Conv of the class input alone"),
    }
    Ok(Val::Act {
        at: prog.layers.len(),
        expr: Expr::X,
    })
}

fn concat(prog: &mut Program, node: &Node) -> Result<Val> {
    let args: Vec<&Val> = (0..node.proto.input.len())
        .map(|i| node.arg(i))
        .collect::<Result<_>>()?;
    if args.iter().all(|a| matches!(a, Val::Const { .. })) {
        // Shape arithmetic: the pieces of a Reshape's target.
        let data: Vec<f32> = args
            .iter()
            .flat_map(|a| match a {
                Val::Const { data, .. } => data.clone(),
                _ => Vec::new(),
            })
            .collect();
        return Ok(Val::Const {
            shape: vec![data.len()],
            data,
        });
    }
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
    prog.view = View::flat(d.out_dim);
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
    if prog.conv_of(&v).is_some() {
        return batch_norm_conv(prog, node, eps, v);
    }
    if let Some(Layer::Dense(d)) = prog.layers.last() {
        // The conv generator's projection: channels of `length` steps each.
        let view = prog.view;
        if view.rank == 3 && view.length > 1 && d.out_dim == view.channels * view.length {
            return batch_norm_projection(prog, node, eps, v);
        }
    }
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

/// BatchNorm's per-channel `(scale, shift)` for `n` channels.
fn bn_affine(node: &Node, n: usize, eps: f32) -> Result<Vec<(f32, f32)>> {
    let p: Vec<Vec<f32>> = (1..5)
        .map(|i| node.arg(i).and_then(|c| per_channel(c, n)))
        .collect::<Result<_>>()?;
    Ok((0..n)
        .map(|o| {
            let s = p[0][o] / (p[3][o] + eps).sqrt();
            (s, p[1][o] - p[2][o] * s)
        })
        .collect())
}

/// Inference BatchNormalization folded into the convolution straight before it.
fn batch_norm_conv(prog: &mut Program, node: &Node, eps: f32, v: Val) -> Result<Val> {
    let n = prog.conv_of(&v).map_or(0, |c| c.out_ch);
    let affine = bn_affine(node, n, eps)?;
    let c = prog.conv_of(&v).ok_or_else(|| anyhow!("no convolution"))?;
    let per_out = c.in_ch * c.kernel;
    for (o, (s, t)) in affine.into_iter().enumerate() {
        c.w[o * per_out..(o + 1) * per_out]
            .iter_mut()
            .for_each(|w| *w *= s);
        c.b[o] = c.b[o] * s + t;
    }
    Ok(v)
}

/// Inference BatchNormalization per channel of the projection's `[channels, length]` output.
fn batch_norm_projection(prog: &mut Program, node: &Node, eps: f32, v: Val) -> Result<Val> {
    let view = prog.view;
    let affine = bn_affine(node, view.channels, eps)?;
    let Some(Layer::Dense(d)) = prog.layers.last_mut() else {
        bail!("BatchNormalization not straight after a layer");
    };
    for row in 0..d.out_dim {
        let (s, t) = affine[row / view.length];
        d.w[row * d.in_dim..(row + 1) * d.in_dim]
            .iter_mut()
            .for_each(|w| *w *= s);
        d.b[row] = d.b[row] * s + t;
        for c in 0..d.class_w.len() / d.out_dim {
            d.class_w[c * d.out_dim + row] *= s;
        }
    }
    Ok(v)
}
