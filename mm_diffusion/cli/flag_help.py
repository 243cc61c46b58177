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
    "class_cond": "class-conditional model: labels from the sorted top-level sub-folders of --data_dir",
    "num_classes": "number of classes of a --class_cond model (0 = training counts the class folders)",
    "class_id": "class of every sample of a --class_cond model (-1 = a class per sample, uniform from --seed)",
    "use_checkpoint": "activation checkpointing: less memory, about 30%% more compute",
    "use_scale_shift_norm": "FiLM-style timestep conditioning (scale and shift after GroupNorm)",
    "resblock_updown": "residual blocks for up/downsampling (False: parameter-free nearest upsampling)",
    "use_fp16": "reduced precision: on the CPU a bf16 copy of the network (fp32 master weights in training), on GPUs "
                "bf16 autocast (fp16 with a grad scaler on GPUs without bf16)",
    "video_type": "video convolution type: 2d+1d (factorised) or 3d",
    "audio_type": "audio convolution type: 1d or linear",
    "cross_attention_position": "RS-MMA with a learned relative temporal position bias between frame and audio "
                                "segment (zero-initialised; new parameters; off = the published attention)",
    "data_scale": "per-modality data scale video,audio (e.g. 1,2.5): diffuse scaled data so both modalities have "
                  "comparable std, divided back on output ('' = none, the published behaviour)",
    "independent_t_prob": "share of each batch trained with independent video and audio timesteps (0 = one shared t, "
                          "the published recipe); needed for --condition_mode clean and --guidance_scale",
    "loss_band_weights": "extra loss weight for one modality inside a timestep band, KEY:LOW-HIGH:WEIGHT[,...], "
                         "e.g. audio:550-800:3 (its timesteps in [550, 800] weigh 3x; '' = off, the published loss)",
    "own_step_inputs": "train one modality on inputs from the model's own DDIM step, KEY:PROB:MAXJUMP, e.g. "
                       "audio:0.5:250 (half the rows: its x_t rebuilt from the model's x0 prediction at t + d, "
                       "d <= 250; one extra forward without gradient; '' = off, the published recipe)",
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
    "sr_class_cond": "class-conditional SR model (in sampling it gets the same labels as the coupled model)",
    "sr_num_classes": "number of classes of a --sr_class_cond model (0 = training counts the class folders)",
    "sr_use_scale_shift_norm": "SR U-Net FiLM-style timestep conditioning",
    "sr_resblock_updown": "SR U-Net residual blocks for up/downsampling",
    "sr_learn_sigma": "the SR model also predicts the variance",
    "sr_diffusion_steps": "number of diffusion steps of the SR model",
    "sr_timestep_respacing": "respacing for ddpm/ddim SR sampling ('', '250', 'ddim25', ...)",
    # ---- data
    "data_dir": "folder of videos (searched recursively), or 'synthetic[:NUM]'; empty = the synthetic dataset",
    "drop_short_audio": "drop clips whose audio ends before (or starts after) the clip instead of zero-padding them",
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
    "precision": "auto, fp32, bf16 (forward/backward on a bf16 copy of the weights, fp32 master weights, optimizer, "
                 "EMA and checkpoints), bf16_autocast or fp16 (autocast + grad scaler, CUDA); auto: fp32 unless "
                 "use_fp16, then bf16 on the CPU and bf16_autocast (fp16 without bf16) on GPUs",
    "sample_interval": "steps between progress samples written as mp4 (0 = never)",
    "sample_num": "clips per progress sample",
    "sample_steps": "DPM-Solver steps for progress samples",
    "max_nonfinite": "stop after this many non-finite losses in a row",
    # ---- sampling
    "multimodal_model_path": "checkpoint file, comma list of files, or run folder (every step) to sample from",
    "model_path": "same as --multimodal_model_path",
    "sample_fn": "sampler: ddpm, ddim, dpm_solver or dpm_solver++",
    "steps": "DPM-Solver model evaluations (ddpm/ddim use --timestep_respacing; ignored by the adaptive solver)",
    "order": "DPM-Solver order 1-3 (0 = MM-Diffusion's: 3 for dpm_solver, 2 for dpm_solver++)",
    "skip_type": "DPM-Solver time steps: time_uniform, logSNR or time_quadratic ('' = logSNR, MM-Diffusion's)",
    "solver_method": "DPM-Solver method: singlestep, singlestep_fixed, multistep or adaptive "
                     "('' = MM-Diffusion's: singlestep for dpm_solver, adaptive for dpm_solver++)",
    "solver_type": "DPM-Solver update of orders 2-3: dpm_solver (the papers') or taylor ('' = dpm_solver)",
    "denoise_to_zero": "DPM-Solver: one more model call at the end returns its x0 prediction (MM-Diffusion: off; "
                       "the SR stage keeps its published settings)",
    "save_type": "container of written samples: mp4 or gif",
    "all_save_num": "samples per checkpoint, whatever the number of processes",
    "clip_denoised": "ddpm/ddim: clamp every x0 prediction to [-1, 1] (the DPM-Solvers keep MM-Diffusion's: "
                     "none for dpm_solver, dynamic thresholding for dpm_solver++)",
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
                      "for models trained with --independent_t_prob); auto: clean when the checkpoint's run "
                      "flags have independent_t_prob > 0 and --classifier_scale is 0, else replacement (published "
                      "checkpoints)",
    "guidance_scale": "condition_mode clean: classifier-free guidance across modalities (1 = none); unset: the "
                      "checkpoint JSON's recommended_sampling.guidance_scale under clean (the shipped demo "
                      "model: 2), else 1",
    "joint_guidance_scale": "sample: the audio guided by the video inside unconditional sampling (models trained "
                            "with --independent_t_prob; 1 = off; one more model call per step); unset: the "
                            "checkpoint JSON's recommended_sampling.joint_guidance_scale for such a model, else 1",
    # ---- super-resolution training data
    "frame_gap": "SR training: take every frame_gap-th frame of each video (at video_fps)",
    "synthetic_frames": "SR training without a folder: frames per synthetic clip",
}


def describe(key: str, default_text: str) -> str:
    """``--help`` text of a flag: its explanation followed by its default."""
    text = FLAG_HELP.get(key, "")
    return f"{text} (default: {default_text})" if text else f"(default: {default_text})"
