"""Gaussian diffusion over an AV pair (or a bare tensor): forward process, model outputs, losses.

Notation: ``alpha_bar_t = prod_{s<=t} (1 - beta_s)``; ``x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps``.
Every function takes trees (see :mod:`mm_diffusion.diffusion.tree`): ``{"video": [N, F, C, H, W],
"audio": [N, C, L]}`` or one tensor; ``t`` is int64 ``[N]`` in this diffusion's index numbering
``[0, num_timesteps)``, shared by all modalities of a sample, or per modality: a dict of ``[N]`` tensors with
the keys of the data tree (``{"video": t_v, "audio": t_a}``), each leaf then diffused to its own t.
"""
from __future__ import annotations

import enum
import math
from typing import Callable, Dict, NamedTuple, Optional, Sequence, Union

import numpy as np
import torch

from .likelihood import discretized_gaussian_log_likelihood, mean_flat, normal_kl
from .tree import Tree, is_dict, leaf_t, randn_like, split_channels, tree_items, tree_map

__all__ = [
    "ModelMeanType",
    "ModelVarType",
    "LossType",
    "Prediction",
    "GaussianDiffusion",
    "ModelFn",
    "check_model_output",
]

ModelFn = Callable[[Tree, torch.Tensor], Tree]


class ModelMeanType(enum.Enum):
    """What the network predicts."""

    EPSILON = "epsilon"  # the noise eps
    START_X = "start_x"  # the clean data x_0


class ModelVarType(enum.Enum):
    """How the reverse-process variance is chosen."""

    FIXED_SMALL = "fixed_small"  # the true posterior variance beta_tilde_t
    FIXED_LARGE = "fixed_large"  # beta_t (beta_tilde_1 at t=0)
    LEARNED = "learned"  # the model outputs log-variance
    LEARNED_RANGE = "learned_range"  # the model outputs v in [-1, 1]; log var = mix of log beta and log beta_tilde

    @property
    def learned(self) -> bool:
        return self in (ModelVarType.LEARNED, ModelVarType.LEARNED_RANGE)


class LossType(enum.Enum):
    MSE = "mse"  # MSE (+ VB term when the variance is learned)
    RESCALED_MSE = "rescaled_mse"  # MSE + VB * T / 1000 (improved DDPM's hybrid loss)
    KL = "kl"  # the variational bound
    RESCALED_KL = "rescaled_kl"  # the variational bound * T

    @property
    def is_vb(self) -> bool:
        return self in (LossType.KL, LossType.RESCALED_KL)


class Prediction(NamedTuple):
    """What a model says about ``x_t``: trees shaped like ``x_t``.

    ``eps`` and ``pred_xstart`` are consistent (one is derived from the other);
    ``var_values`` is the raw variance output of a learned-sigma model (``None`` otherwise).
    """

    eps: Tree
    pred_xstart: Tree
    var_values: Optional[Tree] = None


def _as_index(t, n: int, device):
    if is_dict(t):
        return {k: _as_index(v, n, device) for k, v in t.items()}
    if isinstance(t, torch.Tensor):
        if t.dim() == 0:
            return t.to(device=device, dtype=torch.long).expand(n)
        return t.to(device=device, dtype=torch.long)
    return torch.full((n,), int(t), device=device, dtype=torch.long)


class GaussianDiffusion:
    """The discrete-time Gaussian diffusion of DDPM / improved DDPM, written once for any tree.

    Args:
        betas: ``[T]`` noise variances, each in (0, 1].
        model_mean_type, model_var_type, loss_type: see the enums.
        rescale_timesteps: pass ``t * 1000 / original_num_steps`` (float) to the model instead of ``t``.
        timestep_map: for a respaced diffusion, the ORIGINAL timestep of each of its indices
            (int ``[T]``); the model always receives original timesteps. Identity by default.
        original_num_steps: the length of the original schedule (default ``T``).
    """

    def __init__(self, *, betas: Union[np.ndarray, Sequence[float]], model_mean_type: ModelMeanType = ModelMeanType.EPSILON,
                 model_var_type: ModelVarType = ModelVarType.FIXED_SMALL, loss_type: LossType = LossType.MSE,
                 rescale_timesteps: bool = False, timestep_map: Optional[Sequence[int]] = None,
                 original_num_steps: Optional[int] = None):
        betas = np.asarray(betas, dtype=np.float64)
        if betas.ndim != 1 or betas.size == 0:
            raise ValueError(f"betas must be a non-empty 1-D array, got shape {betas.shape}")
        if not ((betas > 0).all() and (betas <= 1).all()):
            raise ValueError("betas must lie in (0, 1]")
        self.model_mean_type = ModelMeanType(model_mean_type)
        self.model_var_type = ModelVarType(model_var_type)
        self.loss_type = LossType(loss_type)
        self.rescale_timesteps = bool(rescale_timesteps)
        self.betas = betas
        self.num_timesteps = int(betas.shape[0])
        self.timestep_map = np.arange(self.num_timesteps) if timestep_map is None else np.asarray(timestep_map, dtype=np.int64)
        if self.timestep_map.shape != (self.num_timesteps,):
            raise ValueError(f"timestep_map needs {self.num_timesteps} entries, got {self.timestep_map.shape}")
        self.original_num_steps = int(original_num_steps or self.num_timesteps)

        alphas = 1.0 - betas
        self.alphas_cumprod = np.cumprod(alphas)
        self.alphas_cumprod_prev = np.append(1.0, self.alphas_cumprod[:-1])
        self.alphas_cumprod_next = np.append(self.alphas_cumprod[1:], 0.0)
        self.sqrt_alphas_cumprod = np.sqrt(self.alphas_cumprod)
        self.sqrt_one_minus_alphas_cumprod = np.sqrt(1.0 - self.alphas_cumprod)
        self.log_one_minus_alphas_cumprod = np.log(1.0 - self.alphas_cumprod)
        self.sqrt_recip_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod)
        self.sqrt_recipm1_alphas_cumprod = np.sqrt(1.0 / self.alphas_cumprod - 1.0)
        # half log-SNR: lambda_t = log(sqrt(alpha_bar) / sqrt(1 - alpha_bar)) (the DPM-Solver time variable)
        self.log_snr_half = 0.5 * (np.log(self.alphas_cumprod) - self.log_one_minus_alphas_cumprod)
        # posterior q(x_{t-1} | x_t, x_0)
        self.posterior_variance = betas * (1.0 - self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        # the variance is 0 at t=0: clip its log to the next value
        first = self.posterior_variance[1] if self.num_timesteps > 1 else self.betas[0]
        self.posterior_log_variance_clipped = np.log(np.append(first, self.posterior_variance[1:]))
        # fixed-large variance: beta_t, with beta_tilde_1 at t=0 (a better decoder variance)
        self.fixed_large_log_variance = np.log(np.append(first, self.betas[1:]))
        self.posterior_mean_coef1 = betas * np.sqrt(self.alphas_cumprod_prev) / (1.0 - self.alphas_cumprod)
        self.posterior_mean_coef2 = (1.0 - self.alphas_cumprod_prev) * np.sqrt(alphas) / (1.0 - self.alphas_cumprod)
        self._cache: Dict[tuple, torch.Tensor] = {}

    # ------------------------------------------------------------------ helpers
    def _table(self, name: str, device) -> torch.Tensor:
        key = (name, str(device))
        if key not in self._cache:
            self._cache[key] = torch.as_tensor(getattr(self, name), dtype=torch.float64, device=device)
        return self._cache[key]

    def extract(self, name: str, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """Schedule array ``name`` at ``t`` ([N]) reshaped to ``[N, 1, ...]`` to broadcast against ``like``."""
        vals = self._table(name, like.device)[t.to(like.device)]
        return vals.to(like.dtype).reshape(-1, *([1] * (like.dim() - 1)))

    def _per_leaf(self, name: str, t, tree: Tree) -> Tree:
        return tree_map(lambda k, x: self.extract(name, leaf_t(t, k), x), tree, with_key=True)

    def _ex(self, name: str, t, key: Optional[str], like: torch.Tensor) -> torch.Tensor:
        """:meth:`extract` with the leaf ``key``'s own timesteps when ``t`` is per modality."""
        return self.extract(name, leaf_t(t, key), like)

    def _check_t(self, t, tree: Tree):
        if is_dict(t):
            if not is_dict(tree) or set(t) != set(tree):
                raise ValueError(f"per-modality timesteps need one [N] tensor per modality "
                                 f"{sorted(tree) if is_dict(tree) else '(a bare tensor has none)'}, got {sorted(t)}")
            for key in t:
                self._check_t(t[key], tree[key])
            return t
        for key, leaf in tree_items(tree):
            if t.shape != (leaf.shape[0],):
                raise ValueError(f"t must have shape [{leaf.shape[0]}] (one timestep per sample of "
                                 f"{key or 'the tensor'}), got {tuple(t.shape)}")
        # the range check reads values back, so it runs on CPU tensors only (no device sync per step)
        if t.numel() and t.device.type == "cpu" and (int(t.min()) < 0 or int(t.max()) >= self.num_timesteps):
            raise ValueError(f"timesteps must lie in [0, {self.num_timesteps}), got range "
                             f"[{int(t.min())}, {int(t.max())}]")
        return t

    # ------------------------------------------------------------------ model timesteps
    def model_timesteps(self, t):
        """Map this diffusion's indices ``t`` ([N]) to what the model sees: original timesteps
        (int64), or ``t_orig * 1000 / original_num_steps`` (float32) when ``rescale_timesteps``.
        Per-modality timesteps (a dict) are mapped leaf by leaf."""
        if is_dict(t):
            return {k: self.model_timesteps(v) for k, v in t.items()}
        key = ("timestep_map", str(t.device))
        if key not in self._cache:
            self._cache[key] = torch.as_tensor(self.timestep_map, dtype=torch.long, device=t.device)
        mapped = self._cache[key][t.long()]
        if self.rescale_timesteps:
            return mapped.float() * (1000.0 / self.original_num_steps)
        return mapped

    def call_model(self, model_fn: ModelFn, x_t: Tree, t: torch.Tensor) -> Tree:
        """Run ``model_fn(x_t, model_timesteps(t))`` and check it returned the structure of ``x_t``."""
        out = model_fn(x_t, self.model_timesteps(t))
        check_model_output(x_t, out)
        return out

    # ------------------------------------------------------------------ forward process
    def q_mean_variance(self, x_start: Tree, t: torch.Tensor):
        """``q(x_t | x_0)``: (mean, variance, log_variance) trees; the variances broadcast as [N, 1, ...]."""
        mean = tree_map(lambda k, x: self._ex("sqrt_alphas_cumprod", t, k, x) * x, x_start, with_key=True)
        var = tree_map(lambda k, x: 1.0 - self._ex("alphas_cumprod", t, k, x), x_start, with_key=True)
        log_var = self._per_leaf("log_one_minus_alphas_cumprod", t, x_start)
        return mean, var, log_var

    def q_sample(self, x_start: Tree, t: torch.Tensor, noise: Optional[Tree] = None,
                 generator: Optional[torch.Generator] = None) -> Tree:
        """Draw ``x_t ~ q(x_t | x_0)``: ``sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) noise``."""
        self._check_t(t, x_start)
        if noise is None:
            noise = randn_like(x_start, generator)
        return tree_map(
            lambda k, x, n: self._ex("sqrt_alphas_cumprod", t, k, x) * x
            + self._ex("sqrt_one_minus_alphas_cumprod", t, k, x) * n,
            x_start, noise, with_key=True,
        )

    def q_posterior_mean_variance(self, x_start: Tree, x_t: Tree, t: torch.Tensor):
        """``q(x_{t-1} | x_t, x_0)``: (mean, variance, clipped log-variance) trees."""
        mean = tree_map(
            lambda k, x0, xt: self._ex("posterior_mean_coef1", t, k, xt) * x0
            + self._ex("posterior_mean_coef2", t, k, xt) * xt,
            x_start, x_t, with_key=True,
        )
        var = self._per_leaf("posterior_variance", t, x_t)
        log_var = self._per_leaf("posterior_log_variance_clipped", t, x_t)
        return mean, var, log_var

    def predict_xstart_from_eps(self, x_t: Tree, t: torch.Tensor, eps: Tree) -> Tree:
        """``x_0 = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t)``."""
        return tree_map(
            lambda k, xt, e: self._ex("sqrt_recip_alphas_cumprod", t, k, xt) * xt
            - self._ex("sqrt_recipm1_alphas_cumprod", t, k, xt) * e,
            x_t, eps, with_key=True,
        )

    def predict_eps_from_xstart(self, x_t: Tree, t: torch.Tensor, pred_xstart: Tree) -> Tree:
        """``eps = (x_t - sqrt(alpha_bar_t) x_0) / sqrt(1 - alpha_bar_t)``."""
        return tree_map(
            lambda k, xt, x0: (self._ex("sqrt_recip_alphas_cumprod", t, k, xt) * xt - x0)
            / self._ex("sqrt_recipm1_alphas_cumprod", t, k, xt),
            x_t, pred_xstart, with_key=True,
        )

    # ------------------------------------------------------------------ reverse process
    def prediction_from_output(self, output: Tree, x_t: Tree, t: torch.Tensor) -> Prediction:
        """Interpret a raw model output (twice the channels when the variance is learned)."""
        output, var_values = self.split_output(output, x_t)
        if self.model_mean_type == ModelMeanType.EPSILON:
            return Prediction(output, self.predict_xstart_from_eps(x_t, t, output), var_values)
        return Prediction(self.predict_eps_from_xstart(x_t, t, output), output, var_values)

    def split_output(self, output: Tree, x_t: Tree):
        """``(mean_output, var_values)`` of a raw model output (``var_values`` None unless the variance is learned)."""
        var_values = None
        if self.model_var_type.learned:
            output, var_values = split_channels(output)
        tree_map(lambda o, x: _check_shape(o, x), output, x_t)
        return output, var_values

    def predict(self, model_fn: ModelFn, x_t: Tree, t: Union[int, torch.Tensor]) -> Prediction:
        """Call the model on ``x_t`` at index ``t`` (int or [N]) and return eps, x_0 and variance outputs."""
        first = next(iter(x_t.values())) if is_dict(x_t) else x_t
        t = self._check_t(_as_index(t, first.shape[0], first.device), x_t)
        return self.prediction_from_output(self.call_model(model_fn, x_t, t), x_t, t)

    def model_log_variance(self, x_t: Tree, t: torch.Tensor, var_values: Optional[Tree]) -> Tree:
        """The reverse-process log-variance per leaf (broadcastable to the leaf)."""
        kind = self.model_var_type
        if kind == ModelVarType.FIXED_SMALL:
            return self._per_leaf("posterior_log_variance_clipped", t, x_t)
        if kind == ModelVarType.FIXED_LARGE:
            return self._per_leaf("fixed_large_log_variance", t, x_t)
        if var_values is None:
            raise ValueError(f"model_var_type {kind.value} needs the model's variance output")
        if kind == ModelVarType.LEARNED:
            return var_values

        def _range(k, x, v):
            min_log = self._ex("posterior_log_variance_clipped", t, k, x)
            max_log = torch.log(self._ex("betas", t, k, x))
            frac = (v + 1.0) / 2.0
            return frac * max_log + (1.0 - frac) * min_log

        return tree_map(_range, x_t, var_values, with_key=True)

    def p_mean_variance_from_prediction(self, pred: Prediction, x_t: Tree, t: torch.Tensor, *,
                                        clip_denoised: bool = True,
                                        denoised_fn: Optional[Callable[[Tree], Tree]] = None) -> dict:
        """``p(x_{t-1} | x_t)`` from a :class:`Prediction`.

        Returns a dict of trees: ``mean``, ``variance``, ``log_variance``, ``pred_xstart`` (after
        ``denoised_fn`` and clipping to [-1, 1]) and ``eps`` (consistent with that ``pred_xstart``).
        """
        x0 = pred.pred_xstart
        if denoised_fn is not None:
            x0 = denoised_fn(x0)
        if clip_denoised:
            x0 = tree_map(lambda v: v.clamp(-1.0, 1.0), x0)
        log_var = self.model_log_variance(x_t, t, pred.var_values)
        mean, _, _ = self.q_posterior_mean_variance(x0, x_t, t)
        eps = pred.eps if (x0 is pred.pred_xstart) else self.predict_eps_from_xstart(x_t, t, x0)
        return {"mean": mean, "variance": tree_map(torch.exp, log_var), "log_variance": log_var,
                "pred_xstart": x0, "eps": eps}

    def p_mean_variance(self, model_fn: ModelFn, x_t: Tree, t: torch.Tensor, *, clip_denoised: bool = True,
                        denoised_fn: Optional[Callable[[Tree], Tree]] = None) -> dict:
        """Call the model and return ``p(x_{t-1} | x_t)``; see :meth:`p_mean_variance_from_prediction`."""
        return self.p_mean_variance_from_prediction(self.predict(model_fn, x_t, t), x_t, t,
                                                    clip_denoised=clip_denoised, denoised_fn=denoised_fn)

    # ------------------------------------------------------------------ losses
    def vb_terms_bpd(self, pred: Prediction, x_start: Tree, x_t: Tree, t: torch.Tensor) -> Tree:
        """Variational-bound term per leaf, in bits per dimension, ``[N]`` each.

        ``KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t))`` for ``t > 0`` and the discretised decoder NLL
        ``-log p(x_0 | x_1)`` for ``t == 0``; averaged over each modality's dimensions.
        """
        true_mean, _, true_log_var = self.q_posterior_mean_variance(x_start, x_t, t)
        out = self.p_mean_variance_from_prediction(pred, x_t, t, clip_denoised=False)

        def _term(k, x0, tm, tlv, m, lv):
            kl = mean_flat(normal_kl(tm, tlv, m, lv)) / math.log(2.0)
            nll = -mean_flat(discretized_gaussian_log_likelihood(x0, means=m, log_scales=0.5 * lv.expand_as(m)))
            return torch.where(leaf_t(t, k) == 0, nll / math.log(2.0), kl)

        return tree_map(_term, x_start, true_mean, true_log_var, out["mean"], out["log_variance"], with_key=True)

    def training_losses(self, model_fn: ModelFn, x_start: Tree, t: torch.Tensor, noise: Optional[Tree] = None,
                        generator: Optional[torch.Generator] = None) -> Dict[str, torch.Tensor]:
        """Per-sample training losses for a batch.

        Args:
            model_fn: ``model_fn(x_t, t_model) -> tree like x_t`` (twice the channels if learned sigma).
            x_start: clean data tree, e.g. ``{"video": [N, F, C, H, W], "audio": [N, C, L]}``.
            t: int64 ``[N]`` indices of this diffusion, or per modality ``{"video": [N], "audio": [N]}``.
            noise: optional noise tree (default: standard normal).

        Returns:
            dict of ``[N]`` tensors: ``loss`` (the total over modalities), ``mse`` (sum of the
            per-modality MSEs), ``<key>_mse`` per modality (dict input only), and when the variance
            is learned or the loss is a VB loss: ``vb`` (sum) and ``<key>_vb``.
        """
        self._check_t(t, x_start)
        if noise is None:
            noise = randn_like(x_start, generator)
        x_t = self.q_sample(x_start, t, noise)
        terms: Dict[str, torch.Tensor] = {}
        named = is_dict(x_start)

        output = self.call_model(model_fn, x_t, t)
        pred = self.prediction_from_output(output, x_t, t)

        if self.loss_type.is_vb:
            vb = self.vb_terms_bpd(pred, x_start, x_t, t)
            if self.loss_type == LossType.RESCALED_KL:
                vb = tree_map(lambda v: v * self.num_timesteps, vb)
            total = _store(terms, "vb", vb, named)
            terms["loss"] = total
            return terms

        target = noise if self.model_mean_type == ModelMeanType.EPSILON else x_start
        model_main = pred.eps if self.model_mean_type == ModelMeanType.EPSILON else pred.pred_xstart
        mse = tree_map(lambda a, b: mean_flat((a - b) ** 2), target, model_main)
        total = _store(terms, "mse", mse, named)
        if self.model_var_type.learned:
            # the VB term trains only the variance: the mean output is frozen
            frozen = Prediction(tree_map(torch.Tensor.detach, pred.eps), tree_map(torch.Tensor.detach, pred.pred_xstart),
                                pred.var_values)
            vb = self.vb_terms_bpd(frozen, x_start, x_t, t)
            if self.loss_type == LossType.RESCALED_MSE:
                vb = tree_map(lambda v: v * (self.num_timesteps / 1000.0), vb)
            total = total + _store(terms, "vb", vb, named)
        terms["loss"] = total
        return terms

    # ------------------------------------------------------------------ respacing
    def respace(self, use_timesteps: Union[str, int, Sequence[int]]) -> "GaussianDiffusion":
        """A diffusion over a subset of this one's indices (a ``timestep_respacing`` string such as
        ``"ddim25"``, ``"250"``, ``"10,15,20"``, an int count, or explicit indices)."""
        from .respace import SpacedDiffusion, space_timesteps

        if isinstance(use_timesteps, (str, int)):
            use_timesteps = space_timesteps(self.num_timesteps, str(use_timesteps))
        return SpacedDiffusion(self, use_timesteps)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(T={self.num_timesteps}, mean={self.model_mean_type.value}, "
                f"var={self.model_var_type.value}, loss={self.loss_type.value})")


def check_model_output(x_t: Tree, out: Tree) -> None:
    """Raise ``ValueError`` unless the model output ``out`` has the structure (dict keys or tensor) of ``x_t``."""
    if is_dict(x_t) != is_dict(out) or (is_dict(x_t) and set(x_t) != set(out)):
        raise ValueError(f"model_fn must return the structure of its input "
                         f"({sorted(x_t) if is_dict(x_t) else 'a tensor'}), got "
                         f"{sorted(out) if is_dict(out) else type(out).__name__}")


def _check_shape(out: torch.Tensor, x: torch.Tensor) -> None:
    if out.shape != x.shape:
        raise ValueError(f"model output of shape {tuple(out.shape)} does not match x_t of shape {tuple(x.shape)}"
                         " (a learned-sigma model must output twice the channels)")


def _store(terms: Dict[str, torch.Tensor], name: str, per_leaf: Tree, named: bool) -> torch.Tensor:
    """Record ``<key>_<name>`` for each modality and ``name`` = their sum; return the sum."""
    if named:
        for key, value in per_leaf.items():
            terms[f"{key}_{name}"] = value
        total = sum(per_leaf.values())
    else:
        total = per_leaf
    terms[name] = total
    return total
