#!/usr/bin/env python3
"""External check of an exported Keel generator by consumers nobody here wrote.

  ort_check.py MODEL.onnx DIR BATCH

- onnx.checker.check_model(full_check=True) must pass;
- reads DIR/<input>.f32 (little-endian float32, row-major, BATCH rows) for every graph input,
  runs onnxruntime (CPU, one thread) and writes DIR/<output>.ort.f32;
- prints one JSON line: checker verdict, opset, ops, metadata keys, onnxruntime version.

Needs: python3 -m venv .venv && .venv/bin/pip install numpy onnx onnxruntime
"""
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort


def main():
    model, d, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
    m = onnx.load(model)
    onnx.checker.check_model(m, full_check=True)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    feed = {}
    for i in sess.get_inputs():
        shape = [batch if not isinstance(s, int) else s for s in i.shape]
        feed[i.name] = np.fromfile(os.path.join(d, f"{i.name}.f32"), dtype="<f4").reshape(shape)
    for o, y in zip(sess.get_outputs(), sess.run(None, feed)):
        y.astype("<f4").tofile(os.path.join(d, f"{o.name}.ort.f32"))
    print(json.dumps({"checker": "pass", "opset": [o.version for o in m.opset_import],
                      "ops": sorted({n.op_type for n in m.graph.node}),
                      "metadata": sorted(p.key for p in m.metadata_props),
                      "onnxruntime": ort.__version__}))


if __name__ == "__main__":
    main()
