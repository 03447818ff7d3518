"""The names a user can choose between, in one place each: the CLI's choices and help, the option dataclasses and
their checks all read these. Importable without torch, so `mixtask --help` stays fast. (The architectures' names are the
registry's, `mixtask.nets.registry`, also torch-free.)"""

# Output heads of every architecture: the paper's 3-channel "rgb" and our "gated" (mixtask.nets.film)
HEADS = ("rgb", "gated")
