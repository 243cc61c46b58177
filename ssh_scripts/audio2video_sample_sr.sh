#!/usr/bin/env bash
# Zero-shot audio-to-video with a trained (unconditional) MM-Diffusion model, then super-resolution of the frames.
#
# Run as-is on a fresh machine: takes the audio of 8 in-memory synthetic clips (REF_PATH=synthetic:8), generates
# their videos with the newest checkpoint under outputs/ (else the shipped demo checkpoint) on the CPU with
# DPM-Solver, and writes samples/audio2video_sample_sr/<checkpoint name>/{gt,reconstruct,sr,audios,img}: gt/ the
# reference clip, reconstruct/ the generated video with the reference audio copied unchanged, sr/ its SR version
# (when an SR checkpoint is found). Re-running resumes. Settings from the environment:
#
#   REF_PATH          folder of videos giving the audio (sorted clips), or synthetic:N[:SEED] (default: synthetic:8)
#   CLASSIFIER_SCALE  0 = replacement only; > 0 adds gradient guidance of that weight (the original: 3.0) (default: 0)
#   CONDITION_MODE    auto, replacement (the paper's method) or clean (models trained with --independent_t_prob);
#                     auto: clean for such a model unless CLASSIFIER_SCALE > 0, else replacement (default: auto)
#   GUIDANCE_SCALE    clean conditioning's cross-modal guidance (default: unset, i.e. the checkpoint's
#                     recommended_sampling, else 1)
#   MODEL_PATH, SR_MODEL_PATH, OUT_DIR, SEARCH_DIR, CONFIG, SAMPLE_FN, STEPS, TIMESTEP_RESPACING, SR_SAMPLE_FN,
#   SR_STEPS, SR_TIMESTEP_RESPACING, ALL_SAVE_NUM (default 8), BATCH_SIZE, SEED, USE_FP16, NUM_GPUS, DEVICES,
#   LAUNCHER: as in ssh_scripts/multimodal_sample_sr.sh (OUT_DIR default: samples/audio2video_sample_sr).
# Extra arguments go to python -m mm_diffusion.audio2video (they win).
#
# The published AIST++ checkpoints, DDPM with gradient guidance as the original script:
#   CONFIG=paper MODEL_PATH=/models/AIST++.pt SR_MODEL_PATH=/models/AIST++_SR.pt REF_PATH=/data/AIST++_crop/train \
#   SAMPLE_FN=ddpm CLASSIFIER_SCALE=3.0 ALL_SAVE_NUM=64 BATCH_SIZE=1 SR_SAMPLE_FN=ddim SR_TIMESTEP_RESPACING=ddim25 \
#   USE_FP16=True bash ssh_scripts/audio2video_sample_sr.sh
set -euo pipefail
REPO_DIR=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH="${REPO_DIR}${PYTHONPATH:+:$PYTHONPATH}"   # works without pip install

REF_PATH=${REF_PATH:-synthetic:8}
CLASSIFIER_SCALE=${CLASSIFIER_SCALE:-0}
CONDITION_MODE=${CONDITION_MODE:-auto}
GUIDANCE_SCALE=${GUIDANCE_SCALE:-}
MODEL_PATH=${MODEL_PATH:-}
SR_MODEL_PATH=${SR_MODEL_PATH:-auto}
OUT_DIR=${OUT_DIR:-samples/audio2video_sample_sr}
SEARCH_DIR=${SEARCH_DIR:-outputs}
CONFIG=${CONFIG:-}
SAMPLE_FN=${SAMPLE_FN:-dpm_solver}
STEPS=${STEPS:-20}
TIMESTEP_RESPACING=${TIMESTEP_RESPACING:-}
SR_SAMPLE_FN=${SR_SAMPLE_FN:-dpm_solver}
SR_STEPS=${SR_STEPS:-50}
SR_TIMESTEP_RESPACING=${SR_TIMESTEP_RESPACING:-}
ALL_SAVE_NUM=${ALL_SAVE_NUM:-8}
BATCH_SIZE=${BATCH_SIZE:-4}
SEED=${SEED:-42}
USE_FP16=${USE_FP16:-False}
NUM_GPUS=${NUM_GPUS:-1}
DEVICES=${DEVICES:-}
LAUNCHER=${LAUNCHER:-mpiexec}
[ "$SR_MODEL_PATH" = "none" ] && SR_MODEL_PATH=""

MODEL_FLAGS="--use_fp16 ${USE_FP16}"
[ -n "$CONFIG" ] && MODEL_FLAGS="${MODEL_FLAGS} --config ${CONFIG}"
SAMPLE_FLAGS="--ref_path ${REF_PATH} --classifier_scale ${CLASSIFIER_SCALE} --condition_mode ${CONDITION_MODE} --sample_fn ${SAMPLE_FN} --steps ${STEPS} \
--all_save_num ${ALL_SAVE_NUM} --batch_size ${BATCH_SIZE} --seed ${SEED} --is_strict True --output_dir ${OUT_DIR} \
--search_dir ${SEARCH_DIR}"
[ -n "$GUIDANCE_SCALE" ] && SAMPLE_FLAGS="${SAMPLE_FLAGS} --guidance_scale ${GUIDANCE_SCALE}"
[ -n "$TIMESTEP_RESPACING" ] && SAMPLE_FLAGS="${SAMPLE_FLAGS} --timestep_respacing ${TIMESTEP_RESPACING}"
[ -n "$MODEL_PATH" ] && SAMPLE_FLAGS="${SAMPLE_FLAGS} --multimodal_model_path ${MODEL_PATH}"
[ -n "$DEVICES" ] && SAMPLE_FLAGS="${SAMPLE_FLAGS} --devices ${DEVICES}"
SR_FLAGS=""
if [ -n "$SR_MODEL_PATH" ]; then
    SR_FLAGS="--sr_model_path ${SR_MODEL_PATH} --sr_sample_fn ${SR_SAMPLE_FN} --sr_steps ${SR_STEPS}"
    [ -n "$SR_TIMESTEP_RESPACING" ] && SR_FLAGS="${SR_FLAGS} --sr_timestep_respacing ${SR_TIMESTEP_RESPACING}"
fi

source "$(dirname "${BASH_SOURCE[0]}")/_launch.sh"
# (flag groups are word-split on purpose, as in the original scripts: keep paths free of spaces)
launch mm_diffusion.audio2video $MODEL_FLAGS $SAMPLE_FLAGS $SR_FLAGS "$@"
