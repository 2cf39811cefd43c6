"""The Translator's conversion core: a trained model to one self-contained ONNX file, with a parity report.

It runs inside the ML virtualenv (`.venv-ml/`), never inside the mesh's own: the Translator's gRPC
server calls it as a subprocess, from the repository root (or with it on PYTHONPATH)::

    .venv-ml/bin/python -m servers.translator.worker --framework pytorch --model model.pt \
        --signature '{"shape": [null, 1, 8, 8], "dtype": "float32", "csv_feature_columns": [0, 64],
                      "scale": 0.0625}' \
        --dataset digits.csv --out model.onnx --report report.json [--rows 0:256] [--opset 18]

    .venv-ml/bin/python -m servers.translator.worker --onnx-check --model model.onnx \
        --signature '…' --dataset digits.csv --report check.json [--rows 1437:1797]

    .venv-ml/bin/python -m servers.translator.worker --framework pytorch --model original.pt \
        --compare reproduced.pt --signature '…' --dataset digits.csv --report diff.json --rows 0:

(``--compare``: both models on the same rows; ``max_abs_diff`` over every output element, measured, and
whether the files are byte-identical. The Trainer's reproductions run it.)

Frameworks: ``pytorch`` (a TorchScript archive written by ``torch.jit.save``), ``sklearn`` (a pickle of a
fitted estimator or pipeline), ``tensorflow`` (a Keras ``.keras`` or ``.h5`` file).

Exit codes: 0 the report is written (read ``passed`` in it: a parity failure is not a conversion failure);
2 the request cannot be served — unknown framework, a model file that does not load, a model the converter
rejects, a bad signature — with one line ``translator-worker: error: <reason>`` as the last line of stderr
(and ``{"ok": false, "error": …}`` in the report when ``--report`` is given); 1 an unexpected failure.

Only the ML stack and the standard library are imported here: no grpc, no protobuf stubs, no mesh code.
Framework packages are imported lazily, so converting a scikit-learn model never loads torch or TensorFlow.
Unpickling a scikit-learn model runs code from the file: callers run this worker in the job sandbox.
"""
