//! The float program of a Keel generator, read from its ONNX graph: dense and Conv1d layers
//! (BatchNorm, the one-hot class input, nearest upsampling and the final crop folded in) and
//! element-wise maps between them. It is what the int8
//! program is quantized from, and it is checked against tract before anything is quantized.

use anyhow::{anyhow, bail, Context, Result};
use std::collections::HashMap;
use tract_onnx::pb::{self, NodeProto};

mod ops;

/// An element-wise function of one activation, built from the graph's scalar ops.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    X,
    Const(f32),
    Add(Box<Expr>, Box<Expr>),
    Mul(Box<Expr>, Box<Expr>),
    Relu(Box<Expr>),
    Tanh(Box<Expr>),
    Sigmoid(Box<Expr>),
}

impl Expr {
    pub fn eval(&self, x: f32) -> f32 {
        match self {
            Expr::X => x,
            Expr::Const(c) => *c,
            Expr::Add(a, b) => a.eval(x) + b.eval(x),
            Expr::Mul(a, b) => a.eval(x) * b.eval(x),
            Expr::Relu(a) => a.eval(x).max(0.0),
            Expr::Tanh(a) => a.eval(x).tanh(),
            Expr::Sigmoid(a) => 1.0 / (1.0 + (-a.eval(x)).exp()),
        }
    }

    fn wrap(self, f: fn(Box<Expr>) -> Expr) -> Expr {
        f(Box::new(self))
    }
}

/// `y = W x + b (+ class_w[c])`; `w` is row-major `out × in`.
#[derive(Debug, Clone)]
pub struct Dense {
    pub in_dim: usize,
    pub out_dim: usize,
    pub w: Vec<f32>,
    pub b: Vec<f32>,
    /// `classes × out`: the one-hot class input's weights, a bias per class.
    pub class_w: Vec<f32>,
}

/// `y[o, t] = b[o] + Σ_c Σ_j w[o, c, j] · u[c, t + j − k/2]` for `t < out_len`, where `u` is the
/// input `[in_ch, in_len]` upsampled ×`up` (nearest) and zero outside: a "same" convolution, its
/// input's upsampling and a crop of its output in one layer. `w` is `[out_ch, in_ch, k]`.
#[derive(Debug, Clone)]
pub struct Conv {
    pub in_ch: usize,
    pub in_len: usize,
    pub up: usize,
    pub kernel: usize,
    pub out_ch: usize,
    pub out_len: usize,
    pub w: Vec<f32>,
    pub b: Vec<f32>,
}

impl Conv {
    pub fn in_width(&self) -> usize {
        self.in_ch * self.in_len
    }

    pub fn out_width(&self) -> usize {
        self.out_ch * self.out_len
    }

    fn run(&self, x: &[f32]) -> Vec<f32> {
        let (k, pad, long) = (self.kernel, self.kernel / 2, self.in_len * self.up);
        let mut y = vec![0f32; self.out_width()];
        for o in 0..self.out_ch {
            for t in 0..self.out_len {
                let mut acc = self.b[o];
                for c in 0..self.in_ch {
                    for j in 0..k {
                        let s = (t + j).wrapping_sub(pad);
                        if s < long {
                            acc += self.w[(o * self.in_ch + c) * k + j]
                                * x[c * self.in_len + s / self.up];
                        }
                    }
                }
                y[o * self.out_len + t] = acc;
            }
        }
        y
    }
}

#[derive(Debug, Clone)]
pub enum Layer {
    Dense(Dense),
    Conv(Conv),
    Map(Expr),
}

/// How the current activation is laid out: `channels × length` values, channel-major, to be
/// upsampled ×`up` by whatever reads it next (a flat vector is `[width, 1]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    pub channels: usize,
    pub length: usize,
    pub up: usize,
    /// Axes of the ONNX tensor, batch included: 2 (`[N, C·L]`), 3 (`[N, C, L]`) or 4 (`[N, C, L, 1]`).
    pub rank: usize,
}

impl View {
    pub fn flat(width: usize) -> View {
        View {
            channels: width,
            length: 1,
            up: 1,
            rank: 2,
        }
    }

    /// The ONNX tensor's shape, −1 for the batch.
    fn dims(&self) -> Vec<f32> {
        let long = (self.length * self.up) as f32;
        match self.rank {
            2 => vec![-1.0, self.channels as f32 * long],
            3 => vec![-1.0, self.channels as f32, long],
            _ => vec![-1.0, self.channels as f32, long, 1.0],
        }
    }
}

#[derive(Debug, Clone)]
pub struct Program {
    pub latent: usize,
    pub classes: usize,
    pub layers: Vec<Layer>,
    /// The layout of the newest activation (the graph is a chain).
    view: View,
}

/// What a graph value is, as far as the program is concerned.
#[derive(Debug, Clone)]
enum Val {
    Const {
        data: Vec<f32>,
        shape: Vec<usize>,
    },
    /// `expr` applied to the activation produced when the program had `at` layers.
    Act {
        at: usize,
        expr: Expr,
    },
    ClassInput,
    /// Concat(z, class) along the feature axis.
    ZAndClass,
}

impl Program {
    /// Reads the program from a Keel generator's graph (`latent`, `classes` from its metadata).
    pub fn from_onnx(model: &pb::ModelProto, latent: usize, classes: usize) -> Result<Program> {
        let graph = model.graph.as_ref().ok_or_else(|| anyhow!("no graph"))?;
        let mut prog = Program {
            latent,
            classes,
            layers: Vec::new(),
            view: View::flat(latent),
        };
        let mut vals: HashMap<String, Val> = HashMap::new();
        let resolver = tract_onnx::data_resolver::default();
        for t in &graph.initializer {
            vals.insert(t.name.clone(), constant(&*resolver, t)?);
        }
        for input in &graph.input {
            if vals.contains_key(&input.name) {
                continue;
            }
            let v = match input.name.as_str() {
                crate::meta::INPUT_Z => Val::Act {
                    at: 0,
                    expr: Expr::X,
                },
                crate::meta::INPUT_CLASS => Val::ClassInput,
                other => bail!("unexpected graph input `{other}`"),
            };
            vals.insert(input.name.clone(), v);
        }
        for node in &graph.node {
            let node = ops::Node {
                proto: node,
                vals: &vals,
                resolver: &*resolver,
            };
            let out = ops::lower(&mut prog, &node).with_context(|| {
                format!("ONNX node `{}` ({})", node.proto.name, node.proto.op_type)
            })?;
            if let Some(name) = node.proto.output.first() {
                vals.insert(name.clone(), out);
            }
        }
        let out_name = &graph
            .output
            .first()
            .ok_or_else(|| anyhow!("no graph output"))?
            .name;
        match vals.get(out_name) {
            Some(Val::Act { at, expr }) => {
                prog.materialize(*at, expr)?;
            }
            _ => bail!("the output `{out_name}` is not computed from the latent"),
        }
        if !matches!(prog.layers.first(), Some(Layer::Dense(_))) {
            bail!("the graph does not start with a dense layer (or a convolution over the input)");
        }
        if prog.view.up != 1 {
            bail!("the output is upsampled after its last layer");
        }
        Ok(prog)
    }

    /// Emits a map for `expr` on the current activation (nothing for the identity).
    fn materialize(&mut self, at: usize, expr: &Expr) -> Result<()> {
        if at != self.layers.len() {
            bail!("the graph is not a chain (an activation is used after a later layer)");
        }
        if *expr != Expr::X {
            self.layers.push(Layer::Map(expr.clone()));
        }
        Ok(())
    }

    /// The convolution whose output is `v` untouched, if it is one.
    fn conv_of(&mut self, v: &Val) -> Option<&mut Conv> {
        let n = self.layers.len();
        match (v, self.layers.last_mut()) {
            (Val::Act { at, expr: Expr::X }, Some(Layer::Conv(c))) if *at == n => Some(c),
            _ => None,
        }
    }

    /// The dense layer whose output is `v` untouched, if it is one.
    fn dense_of(&mut self, v: &Val) -> Option<&mut Dense> {
        let n = self.layers.len();
        match (v, self.layers.last_mut()) {
            (Val::Act { at, expr: Expr::X }, Some(Layer::Dense(d))) if *at == n => Some(d),
            _ => None,
        }
    }

    /// Runs one sample; `observe(k, values)` sees stage 0 (the latent) and every layer's output.
    pub fn run(
        &self,
        z: &[f32],
        class: Option<usize>,
        mut observe: impl FnMut(usize, &[f32]),
    ) -> Vec<f32> {
        let mut x = z.to_vec();
        observe(0, &x);
        for (k, layer) in self.layers.iter().enumerate() {
            match layer {
                Layer::Dense(d) => {
                    x = (0..d.out_dim)
                        .map(|o| {
                            let row = &d.w[o * d.in_dim..(o + 1) * d.in_dim];
                            let mut acc =
                                d.b[o] + row.iter().zip(&x).map(|(w, v)| w * v).sum::<f32>();
                            if let Some(c) = class.filter(|_| !d.class_w.is_empty()) {
                                acc += d.class_w[c * d.out_dim + o];
                            }
                            acc
                        })
                        .collect();
                }
                Layer::Conv(c) => x = c.run(&x),
                Layer::Map(e) => x.iter_mut().for_each(|v| *v = e.eval(*v)),
            }
            observe(k + 1, &x);
        }
        x
    }
}

fn combine(op: &str, a: Expr, b: Expr) -> Result<Expr> {
    let (a, b) = (Box::new(a), Box::new(b));
    Ok(match (op, *b) {
        ("Add", b) => Expr::Add(a, Box::new(b)),
        ("Mul", b) => Expr::Mul(a, Box::new(b)),
        ("Sub", b) => Expr::Add(
            a,
            Box::new(Expr::Mul(Box::new(Expr::Const(-1.0)), Box::new(b))),
        ),
        ("Div", Expr::Const(c)) => Expr::Mul(a, Box::new(Expr::Const(1.0 / c))),
        _ => bail!("{op} between two activations"),
    })
}

/// A constant holding `n` values (or any count when `n` is 0), broadcast from a scalar if need be.
fn per_channel(v: &Val, n: usize) -> Result<Vec<f32>> {
    match v {
        Val::Const { data, .. } if data.len() == 1 && n > 0 => Ok(vec![data[0]; n]),
        Val::Const { data, .. } if n == 0 || data.len() == n => Ok(data.clone()),
        _ => bail!("expected a constant of {n} values"),
    }
}

fn constant(
    resolver: &dyn tract_onnx::data_resolver::ModelDataResolver,
    t: &pb::TensorProto,
) -> Result<Val> {
    let tensor = tract_onnx::tensor::load_tensor(resolver, t, None)
        .map_err(|e| anyhow!("cannot read tensor `{}`: {e}", t.name))?;
    let shape = tensor.shape().to_vec();
    let f = tensor
        .cast_to::<f32>()
        .map_err(|e| anyhow!("tensor `{}` is not numeric: {e}", t.name))?;
    let data = f
        .to_plain_array_view::<f32>()
        .map_err(|e| anyhow!("tensor `{}`: {e}", t.name))?
        .iter()
        .copied()
        .collect();
    Ok(Val::Const { data, shape })
}

fn float_attr(node: &NodeProto, name: &str) -> Option<f32> {
    node.attribute.iter().find(|a| a.name == name).map(|a| a.f)
}

fn int_attr(node: &NodeProto, name: &str) -> Option<i64> {
    node.attribute.iter().find(|a| a.name == name).map(|a| a.i)
}
