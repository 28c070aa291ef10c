//! The float program of a Keel generator, read from its ONNX graph: dense layers (BatchNorm and
//! the one-hot class input folded in) and element-wise maps between them. It is what the int8
//! program is quantized from, and it is checked against tract before anything is quantized.

use anyhow::{anyhow, bail, Context, Result};
use std::collections::HashMap;
use tract_onnx::pb::{self, NodeProto};

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

#[derive(Debug, Clone)]
pub enum Layer {
    Dense(Dense),
    Map(Expr),
}

#[derive(Debug, Clone)]
pub struct Program {
    pub latent: usize,
    pub classes: usize,
    pub layers: Vec<Layer>,
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

const HANDLED: &str =
    "MatMul, Gemm, Add, Sub, Mul, Div, BatchNormalization, Relu, LeakyRelu, Tanh, \
Sigmoid, Reshape, Flatten, Identity, Dropout, Constant, and Concat of the inputs";

impl Program {
    /// Reads the program from a Keel generator's graph (`latent`, `classes` from its metadata).
    pub fn from_onnx(model: &pb::ModelProto, latent: usize, classes: usize) -> Result<Program> {
        let graph = model.graph.as_ref().ok_or_else(|| anyhow!("no graph"))?;
        let mut prog = Program {
            latent,
            classes,
            layers: Vec::new(),
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
            let out = prog
                .lower(node, &vals, &*resolver)
                .with_context(|| format!("ONNX node `{}` ({})", node.name, node.op_type))?;
            if let Some(name) = node.output.first() {
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
        if !prog.layers.iter().any(|l| matches!(l, Layer::Dense(_))) {
            bail!("the graph has no dense layer");
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

    /// The dense layer whose output is `v` untouched, if it is one.
    fn dense_of(&mut self, v: &Val) -> Option<&mut Dense> {
        let n = self.layers.len();
        match (v, self.layers.last_mut()) {
            (Val::Act { at, expr: Expr::X }, Some(Layer::Dense(d))) if *at == n => Some(d),
            _ => None,
        }
    }

    fn lower(
        &mut self,
        node: &NodeProto,
        vals: &HashMap<String, Val>,
        resolver: &dyn tract_onnx::data_resolver::ModelDataResolver,
    ) -> Result<Val> {
        let arg = |i: usize| -> Result<&Val> {
            let name = node
                .input
                .get(i)
                .ok_or_else(|| anyhow!("missing input {i}"))?;
            vals.get(name)
                .ok_or_else(|| anyhow!("input `{name}` is not computed before use"))
        };
        let scalar = |v: &Val| match v {
            Val::Const { data, .. } if data.len() == 1 => Some(data[0]),
            _ => None,
        };
        let act = |v: &Val| match v {
            Val::Act { at, expr } => Some((*at, expr.clone())),
            _ => None,
        };
        let op = node.op_type.as_str();
        Ok(match op {
            "Constant" => {
                let t = node
                    .attribute
                    .iter()
                    .find(|a| a.name == "value")
                    .and_then(|a| a.t.as_ref())
                    .ok_or_else(|| anyhow!("Constant without a tensor `value`"))?;
                constant(resolver, t)?
            }
            "Identity" | "Dropout" => arg(0)?.clone(),
            "Reshape" | "Flatten" => match arg(0)? {
                Val::Const { data, .. } => {
                    let shape = match arg(1) {
                        Ok(Val::Const { data: s, .. }) => {
                            s.iter().map(|&d| d.max(1.0) as usize).collect()
                        }
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
            },
            "Concat" => {
                let names: Vec<&Val> = (0..node.input.len()).map(arg).collect::<Result<_>>()?;
                match names.as_slice() {
                    [Val::Act {
                        at: 0,
                        expr: Expr::X,
                    }, Val::ClassInput]
                        if self.layers.is_empty() =>
                    {
                        Val::ZAndClass
                    }
                    _ => bail!("only Concat(z, class) is supported"),
                }
            }
            "MatMul" | "Gemm" => {
                let x = arg(0)?.clone();
                let (w, shape) = match arg(1)? {
                    Val::Const { data, shape } if shape.len() == 2 => (data.clone(), shape.clone()),
                    _ => bail!("the weight is not a constant matrix"),
                };
                let trans_b = op == "Gemm" && int_attr(node, "transB") == Some(1);
                if op == "Gemm"
                    && (float_attr(node, "alpha").unwrap_or(1.0) != 1.0
                        || int_attr(node, "transA") == Some(1))
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
                    Val::ZAndClass => (self.latent, self.classes),
                    Val::Act { at, expr } => {
                        self.materialize(*at, expr)?;
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
                if op == "Gemm" && node.input.len() > 2 {
                    let beta = float_attr(node, "beta").unwrap_or(1.0);
                    let bias = per_channel(arg(2)?, n)?;
                    d.b.iter_mut().zip(bias).for_each(|(b, c)| *b += beta * c);
                }
                self.layers.push(Layer::Dense(d));
                Val::Act {
                    at: self.layers.len(),
                    expr: Expr::X,
                }
            }
            "Add" | "Sub" | "Mul" | "Div" => {
                let (a, b) = (arg(0)?.clone(), arg(1)?.clone());
                // A per-channel bias straight after a dense layer folds into it.
                if op == "Add" || op == "Sub" {
                    let sign = if op == "Sub" { -1.0 } else { 1.0 };
                    let fold = match (&a, &b) {
                        (v, c @ Val::Const { .. }) => Some((v, c)),
                        (c @ Val::Const { .. }, v) if op == "Add" => Some((v, c)),
                        _ => None,
                    };
                    if let Some((v, c)) = fold {
                        if let Some(d) = self.dense_of(v) {
                            if let Ok(bias) = per_channel(c, d.out_dim) {
                                d.b.iter_mut().zip(bias).for_each(|(b, c)| *b += sign * c);
                                return Ok(v.clone());
                            }
                        }
                    }
                }
                match (act(&a), act(&b), scalar(&a), scalar(&b)) {
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
                }
            }
            "BatchNormalization" => {
                let eps = float_attr(node, "epsilon").unwrap_or(1e-5);
                let v = arg(0)?.clone();
                let not_after_dense =
                    || anyhow!("BatchNormalization not straight after a dense layer");
                let n = self.dense_of(&v).ok_or_else(not_after_dense)?.out_dim;
                let p: Vec<Vec<f32>> = (1..5)
                    .map(|i| arg(i).and_then(|c| per_channel(c, n)))
                    .collect::<Result<_>>()?;
                let d = self.dense_of(&v).ok_or_else(not_after_dense)?;
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
                v
            }
            "Relu" | "Tanh" | "Sigmoid" | "LeakyRelu" => {
                let (at, e) = act(arg(0)?).ok_or_else(|| anyhow!("{op} of a non-activation"))?;
                let expr = match op {
                    "Relu" => e.wrap(Expr::Relu),
                    "Tanh" => e.wrap(Expr::Tanh),
                    "Sigmoid" => e.wrap(Expr::Sigmoid),
                    _ => {
                        // a·x + (1 − a)·relu(x)
                        let a = float_attr(node, "alpha").unwrap_or(0.01);
                        Expr::Add(
                            Box::new(Expr::Mul(Box::new(Expr::Const(a)), Box::new(e.clone()))),
                            Box::new(Expr::Mul(
                                Box::new(Expr::Const(1.0 - a)),
                                Box::new(e.wrap(Expr::Relu)),
                            )),
                        )
                    }
                };
                Val::Act { at, expr }
            }
            other => bail!(
                "keel-run quantize cannot quantize the ONNX op `{other}`; it handles {HANDLED}"
            ),
        })
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
