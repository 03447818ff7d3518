#!/bin/sh
# The holes' share of the loss (fifteenth session): two branches (../branch.sh: from step 5,878, 120 steps at 256 px),
# inpaint alone, one thread each side by side with the long run paused; --damage-weight 2 (an extra L2 over the hole
# pixels alone, training.step.damaged_l2) against 0 (the same start, options and batches). Scored by
# `mixtask eval --only inpaint` on 48 val samples. Usage: sh probes-holes.sh WEIGHT (0 and 2).
set -e
INPAINT_ONLY="recon=0,inpaint=1,denoise=0,seg=0,style1=0,style2=0,denoise+style1=0,denoise+seg=0,seg+style1=0"
sh "$(dirname "$0")/../branch.sh" "holes-$1" "$INPAINT_ONLY" "--damage-weight $1" inpaint
