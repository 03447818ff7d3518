#!/bin/sh
# The seg mixes' L1 (fifteenth session): two branches (../branch.sh: from step 5,878, 120 steps at 256 px), seg+style1
# alone, one thread each side by side with the long run paused; --mix-l1-weight 8 against 0 (the same start, options
# and batches). Scored by `mixtask eval --only seg+style1` on 48 val samples. Usage: sh probes-mixl1.sh WEIGHT (0, 8).
set -e
MIX_ONLY="recon=0,inpaint=0,denoise=0,seg=0,style1=0,style2=0,denoise+style1=0,denoise+seg=0,seg+style1=1"
sh "$(dirname "$0")/../branch.sh" "mixl1-$1" "$MIX_ONLY" "--mix-l1-weight $1" seg+style1
