#!/usr/bin/env python3
"""The server a Python user would write for kiln's mnist_mlp: FastAPI on uvicorn (one worker,
its defaults), the same REST body as TensorFlow Serving's row format (`{"instances": [[784
pixel values], ...]}` → `{"predictions": [{"class", "probabilities"}]}`), and the model from
the run's weights, either in PyTorch (BACKEND=torch) or as kiln's ONNX export in onnxruntime
(BACKEND=onnx).

Usage: BACKEND=torch|onnx python_server.py RUN_DIR MODEL.onnx PORT
"""
import json
import os
import sys

import numpy as np
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

run_dir, onnx_path, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
backend = os.environ.get("BACKEND", "torch")
info = json.load(open(os.path.join(run_dir, "run.json")))
classes = info["schema"]["classes"]
scale = info["schema"]["preprocess"]["transform"]["factor"]  # mnist_mlp: pixels / 255

if backend == "torch":
    import torch
    from safetensors.torch import load_file

    torch.set_num_threads(2)
    w = load_file(os.path.join(run_dir, "model.safetensors"))
    model = torch.nn.Sequential(torch.nn.Linear(784, 128), torch.nn.ReLU(), torch.nn.Dropout(0.2),
                                torch.nn.Linear(128, 10))
    model.load_state_dict({"0.weight": w["layers.1.weight"], "0.bias": w["layers.1.bias"],
                           "3.weight": w["layers.3.weight"], "3.bias": w["layers.3.bias"]})
    model.eval()

    def predict(x):
        with torch.inference_mode():
            return torch.softmax(model(torch.from_numpy(x * scale)), 1).numpy()
else:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    session = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])

    def predict(x):
        return session.run(["probabilities"], {"features": x})[0]

app = FastAPI()


@app.post("/v1/models/mlp:predict")
async def serve(request: Request):
    body = await request.json()
    x = np.asarray(body["instances"], dtype=np.float32)
    probs = predict(x)
    return JSONResponse({"predictions": [{"class": classes[int(p.argmax())], "probabilities": p.tolist()}
                                         for p in probs]})


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
