"""One-line explanations of the command-line flags built from the defaults dicts (``--help`` text).

Shared by train, image_sr_train, sample, audio2video and video2audio; a flag whose meaning differs a little
between jobs is described for all of them.
"""

FLAG_HELP = {
    # ---- coupled U-Net architecture (original names)
    "video_size": "video clip size F,C,H,W (frames, channels, height, width)",
    "audio_size": "audio clip size C,L (channels, samples); L must be a multiple of F * 4**(levels-1)",
    "num_channels": "base channel count of the U-Net (model_channels)",
    "num_res_blocks": "residual blocks per U-Net level",
    "num_heads": "attention heads of the video/audio self-attention",
    "num_heads_upsample": "heads on the upsampling side (-1 = num_heads; kept for compatibility)",
    "num_head_channels": "channels per head of the RS-MMA cross-attention (-1 = use num_heads)",
    "cross_attention_resolutions": "downsampling rates (1,2,4,...) at which RS-MMA blocks couple video and audio",
    "cross_attention_windows": "RS-MMA window in frames, one per cross-attention resolution",
    "cross_attention_shift": "draw a random window offset per RS-MMA block per call (the 'RS' of RS-MMA)",
    "video_attention_resolutions": "downsampling rates with spatial + temporal video self-attention",
    "audio_attention_resolutions": "downsampling rates with audio self-attention (-1 = none)",
    "channel_mult": "channel multiplier per U-Net level (empty = the original's choice for the size)",
    "dropout": "dropout probability inside residual blocks",
    "class_cond": "class-conditional model (not supported for the coupled U-Net: rejected)",
    "use_checkpoint": "activation checkpointing: less memory, about 30%% more compute",
    "use_scale_shift_norm": "FiLM-style timestep conditioning (scale and shift after GroupNorm)",
    "resblock_updown": "residual blocks for up/downsampling (False: parameter-free nearest upsampling)",
    "use_fp16": "reduced precision: autocast to bf16 (fp16 with a grad scaler on GPUs without bf16)",
    "video_type": "video convolution type: 2d+1d (factorised) or 3d",
    "audio_type": "audio convolution type: 1d or linear",
    "cross_attention_position": "RS-MMA with a learned relative temporal position bias between frame and audio "
                                "segment (zero-initialised; new parameters; off = the published attention)",
    "data_scale": "per-modality data scale video,audio (e.g. 1,2.5): diffuse scaled data so both modalities have "
                  "comparable std, divided back on output ('' = none, the published behaviour)",
    "independent_t_prob": "share of each batch trained with independent video and audio timesteps (0 = one shared t, "
                          "the published recipe); needed for --condition_mode clean and --guidance_scale",
    # ---- diffusion (original names)
    "learn_sigma": "the model also predicts the variance (output channels doubled; hybrid loss)",
    "diffusion_steps": "number of diffusion steps T",
    "noise_schedule": "beta schedule: linear or cosine",
    "timestep_respacing": "respacing for ddpm/ddim sampling: '' (all), '250', 'ddim25', '10,15,20'",
    "use_kl": "train on the variational bound only",
    "predict_xstart": "the model predicts x0 instead of the noise",
    "rescale_timesteps": "feed the model t * 1000 / T instead of t",
    "rescale_learned_sigmas": "scale the VB term by T / 1000 in the hybrid loss",
    "sigma_small": "fixed variance: the posterior variance (True) or beta_t (False)",
    # ---- super-resolution model and diffusion
    "large_size": "super-resolution output size in pixels (e.g. 256)",
    "small_size": "super-resolution input size in pixels (e.g. 64)",
    "sr_num_channels": "SR U-Net base channel count",
    "sr_num_res_blocks": "SR U-Net residual blocks per level",
    "sr_num_heads": "SR U-Net attention heads",
    "sr_num_heads_upsample": "SR U-Net heads on the upsampling side (-1 = sr_num_heads)",
    "sr_num_head_channels": "SR U-Net channels per head (-1 = use sr_num_heads)",
    "sr_attention_resolutions": "image sizes (in pixels at the output) whose SR U-Net levels have self-attention",
    "sr_channel_mult": "SR U-Net channel multiplier per level (empty = guided-diffusion's choice for the size)",
    "sr_dropout": "SR U-Net dropout probability",
    "sr_class_cond": "class-conditional SR model (guided-diffusion's upsampler; not supported from flags yet)",
    "sr_use_scale_shift_norm": "SR U-Net FiLM-style timestep conditioning",
    "sr_resblock_updown": "SR U-Net residual blocks for up/downsampling",
    "sr_learn_sigma": "the SR model also predicts the variance",
    "sr_diffusion_steps": "number of diffusion steps of the SR model",
    "sr_timestep_respacing": "respacing for ddpm/ddim SR sampling ('', '250', 'ddim25', ...)",
    # ---- data
    "data_dir": "folder of videos (searched recursively), or 'synthetic[:NUM]'; empty = the synthetic dataset",
    "video_fps": "frame rate clips are read and written at",
    "audio_fps": "audio sample rate; 0 = the rate that makes the audio as long as the clip (L * fps / F)",
    "num_workers": "data loader worker processes",
    "synthetic_num": "clips in the in-memory synthetic dataset",
    "hum_level": "synthetic data only: quiet colour-dependent hum under the bounce tones (0 = silence between)",
    "random_flip": "random horizontal flips of training clips",
    # ---- training
    "output_dir": "where checkpoints, logs and samples are written",
    "schedule_sampler": "timestep sampler: uniform or loss-second-moment (importance sampling)",
    "lr": "AdamW learning rate",
    "weight_decay": "AdamW weight decay",
    "lr_anneal_steps": "linearly anneal the learning rate to 0 over this many steps (0 = constant)",
    "batch_size": "clips per batch per process",
    "microbatch": "split each batch into micro-batches of this size, accumulating gradients (-1 = off)",
    "ema_rate": "EMA decay rate(s), comma separated",
    "log_interval": "steps between log lines / progress.csv rows",
    "save_interval": "steps between checkpoints",
    "resume_checkpoint": "run folder or model######.pt to resume exactly, or any weights file to fine-tune from",
    "devices": "GPU ids, comma separated; process r uses devices[r %% count]",
    "seed": "random seed",
    "fp16_scale_growth": "accepted for the published scripts; no effect",
    "use_db": "accepted for the published scripts; no effect",
    "max_steps": "stop after this many optimizer steps (0 = run until stopped)",
    "lr_warmup_steps": "linear learning-rate warm-up steps",
    "grad_clip": "clip the global gradient norm to this value (0 = off)",
    "compile": "torch.compile the model",
    "precision": "auto, fp32, bf16 or fp16 (auto: bf16/fp16 autocast on GPU when use_fp16, else fp32)",
    "sample_interval": "steps between progress samples written as mp4 (0 = never)",
    "sample_num": "clips per progress sample",
    "sample_steps": "DPM-Solver steps for progress samples",
    "max_nonfinite": "stop after this many non-finite losses in a row",
    # ---- sampling
    "multimodal_model_path": "checkpoint file, comma list of files, or run folder (every step) to sample from",
    "model_path": "same as --multimodal_model_path",
    "sample_fn": "sampler: ddpm, ddim, dpm_solver or dpm_solver++",
    "steps": "DPM-Solver steps (ddpm/ddim use --timestep_respacing)",
    "save_type": "container of written samples: mp4 or gif",
    "all_save_num": "samples per checkpoint, whatever the number of processes",
    "clip_denoised": "clamp every x0 prediction to [-1, 1]",
    "is_strict": "checkpoint keys and shapes must match the model exactly (False: load what fits, log the rest)",
    "skip_steps": "with a run folder: skip checkpoints below this step",
    "search_dir": "where runs are searched when no checkpoint is given",
    "progress": "show progress bars",
    "sr_model_path": "super-resolution checkpoint ('' = no SR stage)",
    "sr_sample_fn": "SR sampler: ddpm, ddim, dpm_solver or dpm_solver++",
    "sr_steps": "DPM-Solver steps of the SR stage",
    "sr_batch_size": "frames per SR batch",
    "load_noise": "a .npy noise image [3, large_size, large_size] shared by every SR frame (deterministic SR)",
    "ref_path": "folder of reference videos (conditions), or synthetic:N[:SEED]",
    "classifier_scale": "zero-shot conditioning: 0 = replacement only, > 0 adds gradient guidance of this weight",
    "condition_mode": "replacement (the paper's zero-shot method) or clean (the known modality at its own t = 0; "
                      "for models trained with --independent_t_prob)",
    "guidance_scale": "condition_mode clean: classifier-free guidance across modalities (1 = none)",
    # ---- super-resolution training data
    "frame_gap": "SR training: take every frame_gap-th frame of each video (at video_fps)",
    "synthetic_frames": "SR training without a folder: frames per synthetic clip",
}


def describe(key: str, default_text: str) -> str:
    """``--help`` text of a flag: its explanation followed by its default."""
    text = FLAG_HELP.get(key, "")
    return f"{text} (default: {default_text})" if text else f"(default: {default_text})"
