#!/bin/sh
# The context backbone trained, not frozen (sixteenth session): two branches (../branch.sh) from the shipped state at
# step 6,633 (commit 1d736f7), 120 steps, seg alone, one thread each side by side, the same start, options and
# batches; --tune-backbone against the run's frozen backbone. Scored by `mixtask eval --only seg,seg+style1` on 48 val
# samples. Usage: sh probes-tunebackbone.sh tune-backbone|freeze-backbone
set -e
SEG_ONLY="recon=0,inpaint=0,denoise=0,seg=1,style1=0,style2=0,denoise+style1=0,denoise+seg=0,seg+style1=0"
START=1d736f7 END=6753 sh "$(dirname "$0")/../branch.sh" "tb-$1" "$SEG_ONLY" "--$1" seg,seg+style1
