"""The names a user can choose between, in one place each: the CLI's choices and help, the option dataclasses and
their checks all read these. Importable without torch, so `mixtask --help` stays fast. (The architectures' names
are the registry's, `mixtask.nets.registry`, also torch-free.)"""

PRECISIONS = ("auto", "fp32", "bf16", "fp16")  # `auto`: mixtask.inference.devices picks per device
FILL_HEAD = "gated-fill"  # the gated head whose generated colours start from a local fill (nets.film.local_fill)
HEADS = ("rgb", "gated", FILL_HEAD)  # output heads of every architecture: the paper's 3-channel one and ours
GATED_HEADS = ("gated", FILL_HEAD)  # those with a gate (nets.film.apply_gated_head)
CUTOUT_MODES = ("alpha", "black", "mask")  # how apply writes seg (mixtask.apply.cutout)

# training (mixtask.training.options says what each does)
SCHEDULES = ("per-batch", "joint")
WEIGHTINGS = ("equal", "uncertainty", "dwa", "gradnorm")  # joint schedule (mixtask.training.weighting)
BALANCES = ("ema", "none")
STYLE_LOSSES = ("teacher", "perceptual")
SEG_LOSSES = ("mask", "l2")
COMPOSITES = ("pasted", "plain", "union")  # seg composites' backgrounds and labels (mixtask.data.sampling)
