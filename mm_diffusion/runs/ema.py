"""Exponential moving averages of a model's parameters at one or more rates.

``ema = EMA(model, rates=[0.9999])``; after every optimizer step ``ema.update()`` sets, for each rate r,
``avg = r * avg + (1 - r) * param`` (one fused ``torch._foreach_lerp_`` per rate).
``ema.state_dict(rate)`` is a full model state dict (the model's buffers plus averaged parameters),
the same layout as ``model.state_dict()``, so an EMA file loads into the model like any checkpoint.
"""
from __future__ import annotations

from typing import Dict, List, Mapping, Sequence, Union

import torch
import torch.nn as nn

__all__ = ["EMA", "parse_ema_rates"]


def parse_ema_rates(text: Union[str, float, Sequence[Union[str, float]], None]) -> List[str]:
    """``"0.9999,0.999"`` -> ``["0.9999", "0.999"]`` (strings, as they appear in file names).

    ``ValueError`` unless every rate is a number in [0, 1). ``""``/None -> no EMA.
    """
    if text is None:
        return []
    if isinstance(text, str):
        items = [t.strip() for t in text.split(",") if t.strip()]
    elif isinstance(text, (int, float)):
        items = [str(text)]
    else:
        items = [str(t).strip() for t in text if str(t).strip()]
    for item in items:
        try:
            value = float(item)
        except ValueError:
            raise ValueError(f"--ema_rate: {item!r} is not a number; use e.g. 0.9999 or 0.9999,0.999") from None
        if not 0.0 <= value < 1.0:
            raise ValueError(f"--ema_rate: {item} must be in [0, 1)")
    if len(set(float(i) for i in items)) != len(items):
        raise ValueError(f"--ema_rate: repeated rate in {text!r}")
    return items


class EMA:
    """EMA copies (fp32, on the model's device) of ``model``'s trainable parameters, one per rate."""

    def __init__(self, model: nn.Module, rates: Sequence[Union[str, float]]):
        self.model = model
        self.rates = [str(r) for r in rates]
        self.names = [n for n, p in model.named_parameters() if p.requires_grad]
        params = self._params()
        self.averages: Dict[str, List[torch.Tensor]] = {
            r: [p.detach().clone().float() for p in params] for r in self.rates
        }

    def _params(self) -> List[torch.Tensor]:
        named = dict(self.model.named_parameters())
        return [named[n] for n in self.names]

    @torch.no_grad()
    def update(self) -> None:
        """Move every average towards the current parameters."""
        params = [p.detach().float() for p in self._params()]
        for rate, avg in self.averages.items():
            torch._foreach_lerp_(avg, params, 1.0 - float(rate))

    def state_dict(self, rate: Union[str, float]) -> Dict[str, torch.Tensor]:
        """Model-layout state dict with the averages of ``rate`` (cast to each parameter's dtype)."""
        avg = self.averages[self._key(rate)]
        out = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        ref = dict(self.model.named_parameters())
        for name, value in zip(self.names, avg):
            out[name] = value.to(ref[name].dtype).clone()
        return out

    def load_state_dict(self, rate: Union[str, float], state: Mapping[str, torch.Tensor]) -> None:
        """Set the averages of ``rate`` from a model-layout state dict (``ValueError`` on missing keys)."""
        missing = [n for n in self.names if n not in state]
        if missing:
            raise ValueError(f"EMA state for rate {rate} lacks {len(missing)} parameters, e.g. {missing[:3]}")
        key = self._key(rate)
        device = self.averages[key][0].device if self.averages[key] else "cpu"
        self.averages[key] = [state[n].detach().to(device=device, dtype=torch.float32).clone() for n in self.names]

    def _key(self, rate: Union[str, float]) -> str:
        for key in self.averages:
            if key == str(rate) or float(key) == float(rate):
                return key
        raise KeyError(f"no EMA at rate {rate}; rates are {self.rates}")
