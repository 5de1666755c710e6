"""echoweave.export: checkpoint -> ExecuTorch / Core ML / LiteRT / ONNX artifacts + manifest."""
