"""The one place that turns a genome into torch modules, optimizers and latent noise."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm

from genome.genes import COMPUTING, Genome, OptimizerGene
from genome.shapes import Plan, Shape, Step, numel, plan


def _activation(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(0.2)
    if name == "elu":
        return nn.ELU()
    if name == "tanh":
        return nn.Tanh()
    if name == "gelu":
        return nn.GELU()
    if name == "silu":
        return nn.SiLU()
    raise ValueError(f"unknown activation {name!r}")


def _norm(name: str, channels: int, image: bool) -> nn.Module:
    if name in ("none", "spectral"):  # spectral normalisation re-parametrises the weight instead
        return nn.Identity()
    if name == "batch":
        return nn.BatchNorm2d(channels) if image else nn.BatchNorm1d(channels)
    if name == "layer":
        return nn.GroupNorm(1, channels) if image else nn.LayerNorm(channels)
    raise ValueError(f"unknown norm {name!r}")


class Flatten(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


class ToImage(nn.Module):
    """A linear map whose output is viewed as an image: vector to (channels, side, side)."""

    def __init__(self, features: int, shape: Shape):
        super().__init__()
        self.shape = shape
        self.linear = nn.Linear(features, numel(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.flatten(1)).view(-1, *self.shape)


class Resize(nn.Module):
    def __init__(self, side: int):
        super().__init__()
        self.side = side

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] == self.side and x.shape[-2] == self.side:
            return x
        return F.interpolate(x, size=(self.side, self.side), mode="bilinear", align_corners=False)


class Noise(nn.Module):
    """The seed's random noise layer: adds Gaussian noise times a learned scale. A generator draws it
    always (it is part of what it generates); a discriminator only while training (instance noise)."""

    def __init__(self, scale: float, always: bool):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(float(scale)))
        self.always = always

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.always or self.training:
            return x + self.scale * torch.randn_like(x)
        return x


def _near_identity(module: nn.Module) -> nn.Module:
    """An adapter starts by passing its input through (where the widths allow), as Net2Net does,
    so the layers it joins start from what they learned rather than from noise."""
    with torch.no_grad():
        weight = module.weight
        weight.zero_()
        torch.nn.init.eye_(weight.view(weight.shape[0], -1) if weight.dim() == 4 else weight)
        module.bias.zero_()
    return module


def _core(step: Step, always_noise: bool) -> nn.Module:
    """The gene's own operation, on the shape the plan says it receives."""
    gene, core = step.gene, step.core_shape
    if gene.kind == "adapter" and gene.size == 0:
        return _near_identity(nn.Linear(core[0], step.out_shape[0]))
    if gene.kind == "dense":
        return nn.Linear(core[0], step.out_shape[0])
    if gene.kind == "conv":
        return nn.Conv2d(core[0], gene.width, gene.kernel, gene.stride, gene.padding)
    if gene.kind == "deconv":
        return nn.ConvTranspose2d(core[0], gene.width, gene.kernel, gene.stride, gene.padding)
    if gene.kind == "upsample":
        return nn.Upsample(scale_factor=gene.stride, mode="nearest")
    if gene.kind == "reshape":
        return ToImage(numel(core), step.out_shape)
    if gene.kind == "noise":
        return Noise(gene.scale, always_noise)
    if gene.kind == "adapter":  # to an image of `width` channels and side `size`
        if len(core) == 1:
            return ToImage(core[0], step.out_shape)
        channels = _near_identity(nn.Conv2d(core[0], gene.width, 1)) if core[0] != gene.width else nn.Identity()
        return nn.Sequential(channels, Resize(gene.size))
    raise ValueError(f"unknown layer kind {gene.kind!r}")


class Block(nn.Module):
    """One gene as modules: `pre` (the plan's automatic adapter), `linear` (its operation), `norm`,
    `act`, `drop`. Names are stable so inheritance can match them between parent and child."""

    def __init__(self, step: Step, always_noise: bool = True):
        super().__init__()
        gene = step.gene
        if step.pre == "flatten":
            self.pre = Flatten()
        elif step.pre == "to_image":
            self.pre = ToImage(step.in_shape[0], step.core_shape)
        elif step.pre == "resize":
            self.pre = Resize(step.core_shape[1])
        elif step.pre is None:
            self.pre = nn.Identity()
        else:
            raise ValueError(f"unknown adapter {step.pre!r}")
        self.linear = _core(step, always_noise)
        computing = gene.kind in COMPUTING
        if computing and gene.norm == "spectral":
            self.linear = spectral_norm(self.linear)
        image = len(step.out_shape) == 3
        self.norm = _norm(gene.norm, step.out_shape[0], image) if computing else nn.Identity()
        self.act = _activation(gene.activation) if computing else nn.Identity()
        self.drop = (nn.Dropout2d(gene.dropout) if image else nn.Dropout(gene.dropout)) \
            if computing and gene.dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.act(self.norm(self.linear(self.pre(x)))))


class GeneratorHead(nn.Module):
    """Yields exactly the data's shape: a linear map for vectors (viewed as an image when the data is
    one); for an image, a 3×3 convolution to the data's channels and a resize to its side."""

    def __init__(self, shape: Shape, data_shape: Shape):
        super().__init__()
        self.data_shape = data_shape
        if len(data_shape) == 1 or len(shape) == 1:
            self.linear = nn.Linear(numel(shape), numel(data_shape))
            self.resize = nn.Identity()
        else:
            self.linear = nn.Conv2d(shape[0], data_shape[0], 3, padding=1)
            self.resize = Resize(data_shape[1])
        # Images are scaled to [-1, 1]; 2-D points are unbounded.
        self.out = nn.Tanh() if len(data_shape) == 3 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(self.resize, nn.Identity):
            return self.out(self.linear(x.flatten(1)).view(-1, *self.data_shape))
        return self.out(self.resize(self.linear(x)))


class Network(nn.Module):
    """Blocks then a head: `layers.<i>.*` and `head.*` in the state dict."""

    def __init__(self, steps: tuple[Step, ...], head: nn.Module, always_noise: bool):
        super().__init__()
        self.layers = nn.ModuleList(Block(step, always_noise) for step in steps)
        self.head = head
        self.register_buffer("_device_probe", torch.zeros(0), persistent=False)

    @property
    def device(self) -> torch.device:
        """Where the module lives: inputs drawn on the CPU (noise, real data) are moved here."""
        return self._device_probe.device

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.layers:
            x = block(x)
        return self.head(x)


class Generator(Network):
    """Knows its own latent noise, so a duel needs nothing but the module."""

    def __init__(self, genome: Genome, layout: Plan):
        super().__init__(layout.generator, GeneratorHead(*layout.g_head), always_noise=True)
        self.latent_dim = genome.latent_dim
        self.latent_dist = genome.latent_dist

    def noise(self, n: int, rng: torch.Generator) -> torch.Tensor:
        if self.latent_dist == "normal":
            z = torch.randn(n, self.latent_dim, generator=rng)
        elif self.latent_dist == "uniform":
            z = torch.rand(n, self.latent_dim, generator=rng) * 2 - 1
        else:
            raise ValueError(f"unknown latent distribution {self.latent_dist!r}")
        return z.to(self.device)

    def sample(self, n: int, rng: torch.Generator) -> torch.Tensor:
        return self(self.noise(n, rng))


class Discriminator(Network):
    """Outputs one score per pack of `genome.pack` samples (PacGAN; one per sample when the pack is 1);
    above its loss's threshold means "real"."""

    def __init__(self, genome: Genome, layout: Plan):
        head = nn.Sequential(Flatten(), nn.Linear(numel(layout.d_head[0]), 1))
        super().__init__(layout.discriminator, head, always_noise=False)
        self.pack = genome.pack
        # Least squares pulls real scores to 1 and fake to 0; the other losses split at 0.
        self.threshold = 0.5 if genome.loss == "least_squares" else 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scores of consecutive packs of x; a last, short pack is filled up with x's first samples."""
        x = x.to(self.device)
        if self.pack > 1:
            short = -len(x) % self.pack
            x = x[torch.arange(len(x) + short, device=x.device) % len(x)] if short else x
            x = x.reshape(len(x) // self.pack, x.shape[1] * self.pack, *x.shape[2:])
        return super().forward(x).squeeze(-1)

    def judges_real(self, x: torch.Tensor) -> torch.Tensor:
        """One verdict per sample: each sample is judged with its pack."""
        return (self(x) > self.threshold).repeat_interleave(self.pack)[:len(x)]


@dataclass
class Pair:
    generator: Generator
    discriminator: Discriminator

    def state_dicts(self) -> dict:
        """On the CPU, wherever the pair lives: for checkpoints and for players on other devices."""
        return {name: {key: value.detach().cpu() for key, value in net.state_dict().items()}
                for name, net in (("generator", self.generator), ("discriminator", self.discriminator))}

    def to(self, device: str | torch.device) -> Pair:
        self.generator.to(device)
        self.discriminator.to(device)
        return self

    def load_state_dicts(self, states: dict) -> None:
        self.generator.load_state_dict(states["generator"])
        self.discriminator.load_state_dict(states["discriminator"])

    def parameter_count(self) -> int:
        return sum(p.numel() for net in (self.generator, self.discriminator) for p in net.parameters())


def build_pair(genome: Genome, device: str | torch.device = "cpu") -> Pair:
    layout = plan(genome)
    return Pair(Generator(genome, layout).to(device), Discriminator(genome, layout).to(device))


@functools.cache
def _has_fused(cls: type[torch.optim.Optimizer], device: torch.device, dtype: torch.dtype) -> bool:
    """Whether torch has a fused kernel for `cls` on this device and dtype. Torch checks the device only at
    the first step, so a one-element probe takes one."""
    probe = torch.zeros(1, device=device, dtype=dtype, requires_grad=True)
    try:
        optimizer = cls([probe], lr=0.1, fused=True)
        probe.grad = torch.zeros_like(probe)
        optimizer.step()
    except (TypeError, RuntimeError):  # no `fused` option for this optimizer (TypeError), or no kernel here
        return False
    return True


def _fast(cls: type[torch.optim.Optimizer], params: list, **options) -> torch.optim.Optimizer:
    """The fused kernel where torch has one for this optimizer and these parameters, else the multi-tensor
    one: on networks this small the default per-tensor loop is a third of a training step (issue 14)."""
    if params and all(_has_fused(cls, p.device, p.dtype) for p in params):
        return cls(params, fused=True, **options)
    return cls(params, foreach=True, **options)


def make_optimizer(gene: OptimizerGene, params) -> torch.optim.Optimizer:
    params = list(params)  # read twice: for the kernel check, then by the optimizer
    beta1, beta2 = gene.betas
    if gene.name == "adam":
        return _fast(torch.optim.Adam, params, lr=gene.lr, betas=(beta1, beta2))
    if gene.name == "sgd":
        return _fast(torch.optim.SGD, params, lr=gene.lr, momentum=beta1)
    if gene.name == "rmsprop":
        return _fast(torch.optim.RMSprop, params, lr=gene.lr, alpha=beta2)
    raise ValueError(f"unknown optimizer {gene.name!r}")
