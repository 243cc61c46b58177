"""An architecture diagram of the coupled U-Net, read off the model object itself.

``architecture_blocks(model)`` walks ``model.input_blocks``, ``model.middle_blocks`` and
``model.output_blocks`` and returns one record per layer (channels, video frames x H x W, audio length,
self-attention flags, RS-MMA window and shift, the skip connection a stage feeds or consumes);
``architecture_summary`` prints that list as text and ``draw_architecture`` draws it as a PNG:
encoder stages top-down on the left, decoder stages bottom-up on the right, the middle stage at the bottom,
dashed skip connections between the stages of one row.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import List, Optional, Tuple

from ..models.attention import CrossModalAttention
from ..models.convs import AUDIO_SCALE, VIDEO_SCALE, ResampleAV
from ..models.multimodal_unet import InitialBlock, MultimodalUNet, ResBlock


@dataclass
class Layer:
    """One layer of a stage. ``kind``: "input conv", "ResBlock", "ResBlock down", "ResBlock up",
    "resample up/down" or "RS-MMA". Resolutions are those of the layer's OUTPUT."""

    kind: str
    in_channels: int
    out_channels: int
    frames: int
    height: int
    width: int
    audio_length: int
    video_attention: bool = False
    audio_attention: bool = False
    audio_dilation: Optional[int] = None
    window: Optional[int] = None  # RS-MMA: frames per window (the full clip for the middle block)
    shift: Optional[bool] = None  # RS-MMA: random window shift
    full: bool = False  # RS-MMA over the whole clip (middle block)

    def describe(self) -> str:
        """One line of text, e.g. ``ResBlock 64->128 | video 8x16x16, audio 1600 | dil 4 | +video attn``."""
        res = f"video {self.frames}x{self.height}x{self.width}, audio {self.audio_length}"
        if self.kind == "RS-MMA":
            scope = "full clip" if self.full else f"window {self.window}"
            return f"RS-MMA {self.out_channels}ch | {scope}, shift {'on' if self.shift else 'off'} | {res}"
        chans = f"{self.in_channels}->{self.out_channels}" if self.in_channels != self.out_channels else \
            f"{self.out_channels}"
        text = f"{self.kind} {chans} | {res}"
        if self.audio_dilation:
            text += f" | dil {self.audio_dilation}"
        attn = [name for name, on in (("video attn", self.video_attention), ("audio attn", self.audio_attention)) if on]
        if attn:
            text += " | +" + " +".join(attn)
        return text


@dataclass
class Stage:
    """One ``BlockSequence``: ``part`` is "input", "middle" or "output", ``index`` its position there.
    ``skip`` is the index of the matching stage on the other side (input stage i feeds output stage
    ``n - 1 - i``), None for the middle."""

    part: str
    index: int
    layers: List[Layer] = field(default_factory=list)
    skip: Optional[int] = None

    def as_dict(self) -> dict:
        return asdict(self)


def _conv_out(seq) -> int:
    """Output channels of the last convolution in an ``nn.Sequential`` of a ResBlock."""
    conv = seq[-1]
    for module in conv.modules():
        if hasattr(module, "out_channels"):
            last = module.out_channels
    return int(last)


def _res_layer(block: ResBlock, res: Tuple[int, int, int, int]) -> Tuple[Layer, Tuple[int, int, int, int]]:
    frames, h, w, length = res
    kind = "ResBlock"
    if block.resample == "down":
        kind, h, w, length = "ResBlock down", h // VIDEO_SCALE, w // VIDEO_SCALE, length // AUDIO_SCALE
    elif block.resample == "up":
        kind, h, w, length = "ResBlock up", h * VIDEO_SCALE, w * VIDEO_SCALE, length * AUDIO_SCALE
    audio_conv = block.audio_in_layers[-1]
    dilation = [m.dilation[0] for m in audio_conv.modules() if hasattr(m, "dilation")]
    layer = Layer(
        kind=kind, in_channels=_group_norm_channels(block.video_in_layers[0]),
        out_channels=_conv_out(block.video_out_layers), frames=frames, height=h, width=w, audio_length=length,
        video_attention=bool(block.video_attention), audio_attention=bool(block.audio_attention),
        audio_dilation=int(dilation[0]) if dilation else None,
    )
    return layer, (frames, h, w, length)


def _group_norm_channels(norm) -> int:
    for module in norm.modules():
        if hasattr(module, "num_channels"):
            return int(module.num_channels)
    raise ValueError(f"cannot read the channel count of {norm!r}")


def _walk(sequence, part: str, index: int, res, channels: int) -> Tuple[Stage, tuple, int]:
    stage = Stage(part=part, index=index)
    for layer in sequence:
        frames, h, w, length = res
        if isinstance(layer, InitialBlock):
            cin = channels  # the clip's colour channels
            cout = _conv_out([layer.video_conv])
            stage.layers.append(Layer("input conv", cin, cout, frames, h, w, length))
            channels = cout
        elif isinstance(layer, ResBlock):
            info, res = _res_layer(layer, res)
            stage.layers.append(info)
            channels = info.out_channels
        elif isinstance(layer, CrossModalAttention):
            stage.layers.append(Layer(
                "RS-MMA", channels, channels, frames, h, w, length,
                window=int(frames if layer.full else layer.local_window), shift=bool(layer.window_shift),
                full=bool(layer.full),
            ))
        elif isinstance(layer, ResampleAV):
            if layer.direction == "up":
                res = (frames, h * VIDEO_SCALE, w * VIDEO_SCALE, length * AUDIO_SCALE)
            else:
                res = (frames, h // VIDEO_SCALE, w // VIDEO_SCALE, length // AUDIO_SCALE)
            stage.layers.append(Layer(f"resample {layer.direction}", channels, channels, res[0], res[1], res[2],
                                      res[3]))
        else:
            raise ValueError(f"architecture_blocks does not know how to draw a {type(layer).__name__} layer")
    return stage, res, channels


def architecture_blocks(model: MultimodalUNet) -> List[Stage]:
    """The stages of ``model`` in forward order (input..., middle, output...), each with its layers.

    Resolutions start from ``model.video_size = [F, C, H, W]`` and ``model.audio_size = [C, L]`` and follow
    every down/up step (H, W halve and L quarters on the way down). Raises ValueError for a model that is
    not a ``MultimodalUNet``."""
    if not isinstance(model, MultimodalUNet):
        raise ValueError(f"architecture_blocks needs a MultimodalUNet, got {type(model).__name__}")
    frames, _, h, w = model.video_size
    res = (int(frames), int(h), int(w), int(model.audio_size[1]))
    channels = int(model.video_size[1])
    stages: List[Stage] = []
    n_in, n_out = len(model.input_blocks), len(model.output_blocks)
    for i, seq in enumerate(model.input_blocks):
        stage, res, channels = _walk(seq, "input", i, res, channels)
        stage.skip = n_out - 1 - i if n_out - 1 - i >= 0 else None
        stages.append(stage)
    stage, res, channels = _walk(model.middle_blocks, "middle", 0, res, channels)
    stages.append(stage)
    for j, seq in enumerate(model.output_blocks):
        stage, res, channels = _walk(seq, "output", j, res, channels)
        stage.skip = n_in - 1 - j if n_in - 1 - j >= 0 else None
        stages.append(stage)
    return stages


def rs_mma_layers(stages: List[Stage]) -> List[Layer]:
    """All RS-MMA layers of ``stages`` in forward order."""
    return [layer for stage in stages for layer in stage.layers if layer.kind == "RS-MMA"]


def architecture_summary(model: MultimodalUNet) -> str:
    """The diagram's content as text, one line per layer, grouped by stage."""
    stages = architecture_blocks(model)
    params = sum(p.numel() for p in model.parameters())
    lines = [
        f"MultimodalUNet: video {model.video_size} (F, C, H, W), audio {model.audio_size} (C, L), "
        f"{params / 1e6:.2f}M parameters"
    ]
    for stage in stages:
        skip = "" if stage.skip is None else (
            f"  (skip -> output[{stage.skip}])" if stage.part == "input" else f"  (skip <- input[{stage.skip}])")
        lines.append(f"{stage.part}[{stage.index}]{skip}")
        lines.extend(f"    {layer.describe()}" for layer in stage.layers)
    return "\n".join(lines)


# ---- drawing ---------------------------------------------------------------------------------------------

ROW_LINE_INCH = 0.22  # height of one text line in a stage box
ROW_GAP_INCH = 0.18
FIG_WIDTH_INCH = 17.0
HEADER_INCH = 0.9
COLOURS = {"input conv": "#dddddd", "ResBlock": "#cfe2f3", "ResBlock down": "#fce5cd", "ResBlock up": "#fce5cd",
           "resample up": "#fce5cd", "resample down": "#fce5cd", "RS-MMA": "#f4cccc"}


def _row_heights(stages: List[Stage]) -> Tuple[List[float], float]:
    inputs = [s for s in stages if s.part == "input"]
    outputs = [s for s in stages if s.part == "output"]
    middle = [s for s in stages if s.part == "middle"][0]
    rows = []
    for k, left in enumerate(inputs):
        right_lines = len(outputs[len(outputs) - 1 - k].layers) if len(outputs) - 1 - k >= 0 else 0
        rows.append(max(len(left.layers), right_lines) * ROW_LINE_INCH + 0.12)
    return rows, len(middle.layers) * ROW_LINE_INCH + 0.12


def architecture_figure_size(stages: List[Stage], dpi: int = 100) -> Tuple[int, int]:
    """Pixel size ``(width, height)`` of the PNG ``draw_architecture`` writes for ``stages`` at ``dpi``."""
    rows, middle = _row_heights(stages)
    height = HEADER_INCH + sum(r + ROW_GAP_INCH for r in rows) + middle + ROW_GAP_INCH + 0.6
    return int(round(FIG_WIDTH_INCH * dpi)), int(round(height * dpi))


COLUMN_INCH = 7.6  # width of one column of layer boxes


def _box(ax, x: float, y: float, stage: Stage, label: str) -> float:
    """One stage as a column of layer boxes with ``label`` above, top at ``y``; returns its bottom."""
    from matplotlib.patches import FancyBboxPatch

    ax.text(x, y - 0.03, label, fontsize=7, color="#555555", va="bottom")
    for i, layer in enumerate(stage.layers):
        top = y + i * ROW_LINE_INCH
        patch = FancyBboxPatch((x, top + 0.02), COLUMN_INCH, ROW_LINE_INCH - 0.04, boxstyle="round,pad=0.005",
                               facecolor=COLOURS.get(layer.kind, "white"), edgecolor="#666666", linewidth=0.6)
        ax.add_patch(patch)
        ax.text(x + 0.08, top + ROW_LINE_INCH / 2, layer.describe(), fontsize=7.2, va="center",
                family="monospace")
    return y + len(stage.layers) * ROW_LINE_INCH


def _draw_rows(ax, inputs, outputs, rows, left_x: float, right_x: float):
    """Encoder stages on the left, the decoder stage they skip to on the right, one row each.
    Returns ``(y below the last row, [(top, bottom)] left, [(top, bottom)] right)``."""
    y = HEADER_INCH
    left_bottoms, right_tops = [], []
    for k, (left, row_h) in enumerate(zip(inputs, rows)):
        top = y + 0.12
        left_bottom = _box(ax, left_x, top, left, f"input_blocks[{left.index}]")
        j = len(outputs) - 1 - k
        if 0 <= j < len(outputs):
            right = outputs[j]
            right_bottom = _box(ax, right_x, top, right, f"output_blocks[{right.index}]")
            skip_y = top + ROW_LINE_INCH / 2
            ax.annotate("", xy=(right_x, skip_y), xytext=(left_x + COLUMN_INCH, skip_y),
                        arrowprops=dict(arrowstyle="->", linestyle="--", color="#888888", linewidth=0.8))
            ax.text(FIG_WIDTH_INCH / 2, skip_y - 0.04, f"skip {left.layers[-1].out_channels}ch", fontsize=6.5,
                    ha="center", va="bottom", color="#777777")
            right_tops.append((top, right_bottom))
        left_bottoms.append((top, left_bottom))
        y += row_h + ROW_GAP_INCH
    return y, left_bottoms, right_tops


def _draw_flow(ax, middle: Stage, y: float, left_bottoms, right_tops, left_x: float, right_x: float) -> None:
    """The main flow: down the encoder (left margin), through the middle stage, up the decoder (right margin)."""
    col_w = COLUMN_INCH
    lx, rx = left_x - 0.14, right_x + col_w + 0.14
    arrow = dict(arrowstyle="->", color="black", linewidth=0.8)
    for (_, bottom), (next_top, _) in zip(left_bottoms, left_bottoms[1:]):
        ax.annotate("", xy=(lx, next_top + 0.1), xytext=(lx, bottom - 0.1), arrowprops=arrow)
    for (_, bottom), (next_top, _) in zip(right_tops, right_tops[1:]):
        ax.annotate("", xy=(rx, bottom - 0.1), xytext=(rx, next_top + 0.1), arrowprops=arrow)
    mid_x = (FIG_WIDTH_INCH - col_w) / 2
    mid_top = y + 0.12
    mid_bottom = _box(ax, mid_x, mid_top, middle, "middle_blocks")
    mid_y = mid_top + ROW_LINE_INCH / 2
    if left_bottoms:
        ax.annotate("", xy=(mid_x, mid_y), xytext=(lx, left_bottoms[-1][1] - 0.1),
                    arrowprops=dict(arrow, connectionstyle="angle,angleA=90,angleB=0"))
    if right_tops:
        ax.annotate("", xy=(rx, right_tops[-1][1] - 0.1), xytext=(mid_x + col_w, mid_y),
                    arrowprops=dict(arrow, connectionstyle="angle,angleA=0,angleB=90"))
    ax.text(mid_x, mid_bottom + 0.25, "output: GroupNorm, SiLU, conv -> video [N, F, C, H, W] / audio [N, C, L] "
            "(the two sub-nets' heads)", fontsize=7, color="#555555", va="center")


def draw_architecture(model: MultimodalUNet, out: str, dpi: int = 100, title: Optional[str] = None) -> str:
    """Draw ``model``'s coupled U-Net as a PNG of ``architecture_figure_size(architecture_blocks(model), dpi)``
    pixels and return the written path."""
    from ._io import plt, save_figure

    stages = architecture_blocks(model)
    inputs = [s for s in stages if s.part == "input"]
    outputs = [s for s in stages if s.part == "output"]
    middle = [s for s in stages if s.part == "middle"][0]
    rows, _ = _row_heights(stages)
    width_px, height_px = architecture_figure_size(stages, dpi)
    fig_w, fig_h = width_px / dpi, height_px / dpi
    fig = plt.figure(figsize=(fig_w, fig_h), dpi=dpi)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.set_xlim(0, fig_w)
    ax.set_ylim(fig_h, 0)  # inches, y downwards
    ax.axis("off")

    params = sum(p.numel() for p in model.parameters())
    ax.text(0.2, 0.3, title or "MM-Diffusion coupled U-Net", fontsize=13, weight="bold", va="center")
    ax.text(0.2, 0.62, f"video {model.video_size} (frames, channels, H, W) + audio {model.audio_size} "
            f"(channels, samples), {params / 1e6:.2f}M parameters.  Resolutions are each layer's output "
            "(video frames x H x W, audio length).  Red: RS-MMA cross-modal attention.  Orange: resampling.  "
            "Dashed: skip connections.  dil: audio conv dilation.", fontsize=8, va="center")

    left_x, right_x = 0.3, FIG_WIDTH_INCH - 0.3 - COLUMN_INCH
    y, left_bottoms, right_tops = _draw_rows(ax, inputs, outputs, rows, left_x, right_x)
    _draw_flow(ax, middle, y, left_bottoms, right_tops, left_x, right_x)
    return save_figure(fig, out, dpi)
