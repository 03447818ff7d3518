#!/bin/sh
# seg's L1 weight again (fifteenth session, end): two branches (../branch.sh: from step 5,878, 120 steps at 256 px),
# seg alone, one thread each side by side; --seg-l1-weight 16 against the run's 8 (the same start, options and
# batches). Scored by `mixtask eval --only seg,seg+style1` on 48 val samples. Usage: sh probes-segl1x16.sh WEIGHT.
set -e
SEG_ONLY="recon=0,inpaint=0,denoise=0,seg=1,style1=0,style2=0,denoise+style1=0,denoise+seg=0,seg+style1=0"
sh "$(dirname "$0")/../branch.sh" "segl1x-$1" "$SEG_ONLY" "--seg-l1-weight $1" seg,seg+style1
