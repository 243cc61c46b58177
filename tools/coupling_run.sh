#!/bin/bash
# The coupling experiments' training recipe (docs/coupling.md, the demo model's stages 4-6).
# usage: tools/coupling_run.sh NAME START MAXSTEPS [extra train flags]
#   NAME      run folder outputs/c4/NAME (log in outputs/c4/NAME.log); resumed exactly if it has a checkpoint
#   START     weights to fine-tune from when the folder has no checkpoint yet
#   MAXSTEPS  --max_steps
# environment: LR (default 2e-4), ANNEAL (--lr_anneal_steps, default MAXSTEPS), SAVE (--save_interval, default
# 200), THREADS (OMP_NUM_THREADS, default 1). Extra flags come last and win, e.g. --hum_level 0 (the shipped
# model's stage 6) over the recipe's --hum_level 0.1
set -euo pipefail
if [ $# -lt 3 ]; then sed -n 2,9p "$0"; exit 2; fi
name=$1; start=$2; steps=$3; shift 3
mkdir -p outputs/c4
res=$start
if [ -f "outputs/c4/$name/config.json" ] && ls "outputs/c4/$name"/model*.pt >/dev/null 2>&1; then res=outputs/c4/$name; fi
OMP_NUM_THREADS=${THREADS:-1} python -m mm_diffusion.train --config demo --predict_xstart True --data_scale 1,2.5 \
  --output_dir "outputs/c4/$name" --resume_checkpoint "$res" --hum_level 0.1 --synthetic_num 4096 --seed 3 \
  --batch_size 8 --lr "${LR:-2e-4}" --lr_warmup_steps 50 --grad_clip 1.0 --lr_anneal_steps "${ANNEAL:-$steps}" \
  --max_steps "$steps" --ema_rate 0.998 --log_interval 50 --save_interval "${SAVE:-200}" --sample_interval 0 \
  --progress False --precision bf16 "$@" > "outputs/c4/$name.log" 2>&1
