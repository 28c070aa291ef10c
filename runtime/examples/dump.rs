fn main() {
    let p = std::env::args().nth(1).unwrap();
    let b: usize = std::env::args().nth(2).unwrap().parse().unwrap();
    let g = keel_runtime::Generator::load(std::path::Path::new(&p)).unwrap();
    let plan = g.plan(b).unwrap();
    for n in plan.model().nodes() {
        println!("{} {} {:?}", n.name, n.op.name(), n.op);
    }
}
