"""Running a model on images: the upscaler, bounded-memory tiles and streaming of huge
images, self-ensemble, fused CPU paths, memory budgets, half precision and ONNX."""
