"""What a user chooses from, and the server's limits: one list (or number) each, read by the CLI,
the server and the library alike. Nothing here imports anything, so every layer may read it."""

from __future__ import annotations

# Data and training (config.py validates them).
DIRECTIONS = ("AtoB", "BtoA")
DATASET_MODES = ("aligned", "folders", "unpaired")
DATA_ON_DEVICE = ("auto", "yes", "no")  # DataConfig.data_on_device: where a cached dataset lives when training on a GPU
GAN_MODES = ("vanilla", "lsgan", "hinge", "wgan-gp")
LR_POLICIES = ("linear", "step", "cosine")
AMP_MODES = ("auto", "off", "bf16", "fp16")
SWITCHES = ("auto", "on", "off")
CPU_KERNELS = ("timed", "rule")
# Which regions a hint's fill paints (hints/fill.py): closed outlines not touching the border, or
# everything but the page once gaps of up to 2 px are closed.
HINT_REGIONS = ("closed", "open")

# Reading a run (inference.py): which weights, which runtime, and how an input of its own size is met.
WEIGHTS = ("auto", "ema", "raw")
BACKENDS = ("torch", "onnx")
# auto: the generator at its training scale, the result at the input's size with the input's strokes;
# bicubic: the same, upsampled plainly (to compare); native: the generator on the input as it is.
SCALES = ("auto", "bicubic", "native")
# How a hints model's hints are spread before it sees them: fill, as it was trained (hints/fill.py); propagate,
# across texture too and then the fill (hints/propagate.py; models trained with hint_fill).
HINT_SPREADS = ("fill", "propagate")
# The evaluation's simulated hints (hints/simulation.py): square dots (the standard protocol), or strokes.
HINT_SHAPES = ("dots", "strokes")
EXPORT_FORMATS = ("onnx", "torchscript", "tflite")

# Making line art from pictures (data/sketch.py).
SKETCH_METHODS = ("xdog", "canny", "strokes")
SKETCH_FITS = ("pad", "crop")

# Limits on what one input may be: the full-size path refuses larger images (memory stays bounded,
# ~1 GB), and the server refuses larger uploads before decoding them.
MAX_PIXELS = 4096 * 4096
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_QUEUE = 8  # server: requests waiting or running; more get 503
