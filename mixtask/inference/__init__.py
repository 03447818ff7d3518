"""Running a trained network on images: the `Translator` (task vectors, precision, the CPU-rewritten engine),
streamed tiling for large images, device and precision choice, and per-pixel task maps."""
