S=../shared/data; out=/tmp/probes/seg64
JW="recon=0,inpaint=0,denoise=0,style1=0,style2=0,denoise+style1=0,denoise+seg=0,seg+style1=0,seg=1"
start=$(date +%s)
OMP_NUM_THREADS=2 mixtask train --data $S --out $out --style style1=$S/styles/style1-starry-night.jpg \
    --style style2=$S/styles/candidates/plasma-autumn.jpg --size 64 --batch 8 --steps 2000 --stage1-steps 0 \
    --seed 1 --lr 1e-4 --checkpoint-every 0 --preview-every 0 --adversarial-weight 0 --compile -q \
    --init /tmp/probes/s17135.safetensors --job-weights $JW
echo wall $(( $(date +%s) - start ))
mixtask eval --data $S -w $out/weights.safetensors --count 16 --size 256 --only seg --json $out-eval256.json
python /tmp/p/gates.py $out/weights.safetensors
