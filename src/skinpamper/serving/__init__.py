"""Serving a trained model: the Predictor (run folder or ONNX), the ONNX export, and the HTTP service."""
