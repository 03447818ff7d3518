#!/usr/bin/env bash
# Rebuild examples/gallery/ (the README's gallery) with the shipped weights.
# Every image below is made by exactly the command printed beside it in the README.
set -euo pipefail
cd "$(dirname "$0")/.."
out=examples/gallery
mkdir -p "$out"
run() { echo "+ $*"; "$@"; }

# 256-px copy of a held-out example, and its damaged versions (the training corruptions, seeded)
python3 -c "from PIL import Image; Image.open('examples/skimage-astronaut.jpg').resize((256, 256), Image.LANCZOS).save('$out/astronaut.png')"
run mixtask damage "$out/astronaut.png" --kind inpaint --seed 2 -o "$out/astronaut-holes.png" --overwrite
run mixtask damage "$out/astronaut.png" --kind denoise --seed 3 -o "$out/astronaut-scratches.png" --overwrite

apply() {  # apply INPUT TASK NAME [EXT]: seg and its mixes are cut-outs with alpha, so PNG
  run mixtask apply "$1" --task "$2" -o "$out/$3.${4:-jpg}" --overwrite
}
apply "$out/astronaut.png" recon recon
apply "$out/astronaut-holes.png" inpaint=1 inpaint
apply "$out/astronaut-scratches.png" denoise=1 denoise
apply "$out/astronaut.png" seg=1 seg png
apply "$out/astronaut.png" style1=1 style1
apply "$out/astronaut.png" style2=1 style2
apply "$out/astronaut-scratches.png" denoise=1,style1=1 denoise+style1
apply "$out/astronaut-scratches.png" denoise=1,seg=1 denoise+seg png
apply "$out/astronaut.png" seg=1,style1=1 seg+style1 png
run mixtask apply "$out/astronaut.png" --task seg --cutout mask -o "$out/seg-mask.png" --overwrite
run mixtask sweep "$out/astronaut.png" --x style1 --y seg --steps 5 --cell 128 -o "$out/sweep-style1-seg.jpg" --overwrite

# a spatial task map: style1 strength rising from 0 (left) to 1 (right)
python3 -c "import numpy as np; from PIL import Image; Image.fromarray(np.tile(np.linspace(0, 255, 256).astype(np.uint8), (256, 1)), 'L').save('$out/map-gradient.png')"
run mixtask apply "$out/astronaut.png" --task-map "$out/map-gradient.png" --map-tasks style1 -o "$out/style1-map.jpg" --overwrite
