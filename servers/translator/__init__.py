"""Translator (seed 7.4): trained models to ONNX with an onnxruntime parity report."""
