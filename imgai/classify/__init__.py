"""Image classification: the supported architectures, PyTorch → ONNX conversion, validation, tagging."""
