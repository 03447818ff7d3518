#!/bin/sh
# The restorations' gate supervised with the fill head (seventeenth session): with `--head gated-fill` the gate both
# passes pixels through and says which pixels the local fill reads; a true-mask gate would give the holes 20.70 dB
# and the scratches 21.80 against 19.85 / 20.02 from the network's own (16 eval crops, the run's average at 850).
# Two branches of the fill run from its committed state at 601 (61a4f18), inpaint and denoise alone, 120 steps at
# 256 px, the run's lr 1e-4, average 0.98, one thread each beside the long run, the same batches;
# `--keep-weight W` (BCE of the gate against the undamaged pixels; about 0.12-0.18 against an image L2 of 0.001,
# so W near 0.01 weighs them alike) against 0. Scored by `mixtask eval --only inpaint,denoise` on 48 val samples.
# A third arm supervises inpaint's gate alone (`--keep-kinds inpaint`).
# Usage (repository root): sh weights/training/probes/keepfill/probes-keepfill.sh NAME W [KINDS]
set -e
RESTORE="recon=0,inpaint=1,denoise=1,seg=0,style1=0,style2=0,denoise+style1=0,denoise+seg=0,seg+style1=0"
START=61a4f18 END=721 sh weights/training/probes/branch.sh "$1" "$RESTORE" "--keep-weight $2 --keep-kinds ${3:-inpaint,denoise}" inpaint,denoise
