"""The HTTP service: a FastAPI app over one Predictor, with a page at `/`.

Thin by design: routes parse uploads, make one Predictor call and turn library errors into HTTP
statuses. It imports onnxruntime, never Keras or TensorFlow, unless it is given a run folder.
"""
