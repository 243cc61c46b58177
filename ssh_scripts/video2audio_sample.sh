#!/usr/bin/env bash
# Zero-shot video-to-audio with a trained (unconditional) MM-Diffusion model.
#
# Run as-is on a fresh machine: takes the video of 8 in-memory synthetic clips (REF_PATH=synthetic:8), generates
# their audio with the newest checkpoint under outputs/ (else the shipped demo checkpoint) on the CPU with
# DPM-Solver, and writes samples/video2audio_sample/<checkpoint name>/{gt,reconstruct,audios,img}: gt/ the reference
# clip, reconstruct/ the reference video (copied unchanged) with the generated audio, audios/ that audio as wav.
# Re-running resumes. Settings from the environment:
#
#   REF_PATH          folder of videos giving the video (sorted clips), or synthetic:N[:SEED] (default: synthetic:8)
#   CLASSIFIER_SCALE  0 = replacement only; > 0 adds gradient guidance of that weight (the original: 3.0) (default: 0)
#   CONDITION_MODE    auto, replacement (the paper's method) or clean (models trained with --independent_t_prob);
#                     auto: clean for such a model unless CLASSIFIER_SCALE > 0, else replacement (default: auto)
#   GUIDANCE_SCALE    clean conditioning's cross-modal guidance (default: unset, i.e. the checkpoint's
#                     recommended_sampling, else 1)
#   MODEL_PATH, OUT_DIR, SEARCH_DIR, CONFIG, SAMPLE_FN (default here: dpm_solver; the original used ddpm), STEPS,
#   TIMESTEP_RESPACING, ALL_SAVE_NUM (default 8), BATCH_SIZE, SEED, USE_FP16, NUM_GPUS, DEVICES, LAUNCHER:
#   as in ssh_scripts/multimodal_sample_sr.sh (OUT_DIR default: samples/video2audio_sample).
# Extra arguments go to python -m mm_diffusion.video2audio (they win).
#
# The published AIST++ checkpoint, DDPM with gradient guidance as the original script:
#   CONFIG=paper MODEL_PATH=/models/AIST++.pt REF_PATH=/data/AIST++_crop/train SAMPLE_FN=ddpm CLASSIFIER_SCALE=3.0 \
#   ALL_SAVE_NUM=48 BATCH_SIZE=2 USE_FP16=True bash ssh_scripts/video2audio_sample.sh
set -euo pipefail
REPO_DIR=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH="${REPO_DIR}${PYTHONPATH:+:$PYTHONPATH}"   # works without pip install

REF_PATH=${REF_PATH:-synthetic:8}
CLASSIFIER_SCALE=${CLASSIFIER_SCALE:-0}
CONDITION_MODE=${CONDITION_MODE:-auto}
GUIDANCE_SCALE=${GUIDANCE_SCALE:-}
MODEL_PATH=${MODEL_PATH:-}
OUT_DIR=${OUT_DIR:-samples/video2audio_sample}
SEARCH_DIR=${SEARCH_DIR:-outputs}
CONFIG=${CONFIG:-}
SAMPLE_FN=${SAMPLE_FN:-dpm_solver}
STEPS=${STEPS:-20}
TIMESTEP_RESPACING=${TIMESTEP_RESPACING:-}
ALL_SAVE_NUM=${ALL_SAVE_NUM:-8}
BATCH_SIZE=${BATCH_SIZE:-4}
SEED=${SEED:-42}
USE_FP16=${USE_FP16:-False}
NUM_GPUS=${NUM_GPUS:-1}
DEVICES=${DEVICES:-}
LAUNCHER=${LAUNCHER:-mpiexec}

MODEL_FLAGS="--use_fp16 ${USE_FP16}"
[ -n "$CONFIG" ] && MODEL_FLAGS="${MODEL_FLAGS} --config ${CONFIG}"
SAMPLE_FLAGS="--ref_path ${REF_PATH} --classifier_scale ${CLASSIFIER_SCALE} --condition_mode ${CONDITION_MODE} --sample_fn ${SAMPLE_FN} --steps ${STEPS} \
--all_save_num ${ALL_SAVE_NUM} --batch_size ${BATCH_SIZE} --seed ${SEED} --is_strict True --output_dir ${OUT_DIR} \
--search_dir ${SEARCH_DIR}"
[ -n "$GUIDANCE_SCALE" ] && SAMPLE_FLAGS="${SAMPLE_FLAGS} --guidance_scale ${GUIDANCE_SCALE}"
[ -n "$TIMESTEP_RESPACING" ] && SAMPLE_FLAGS="${SAMPLE_FLAGS} --timestep_respacing ${TIMESTEP_RESPACING}"
[ -n "$MODEL_PATH" ] && SAMPLE_FLAGS="${SAMPLE_FLAGS} --multimodal_model_path ${MODEL_PATH}"
[ -n "$DEVICES" ] && SAMPLE_FLAGS="${SAMPLE_FLAGS} --devices ${DEVICES}"

source "$(dirname "${BASH_SOURCE[0]}")/_launch.sh"
# (flag groups are word-split on purpose, as in the original scripts: keep paths free of spaces)
launch mm_diffusion.video2audio $MODEL_FLAGS $SAMPLE_FLAGS "$@"
