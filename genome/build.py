"""The one place that turns a genome into torch modules, optimizers and latent noise."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from genome.genes import Genome, Layer, OptimizerGene


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


def _norm(name: str, width: int) -> nn.Module:
    if name == "none":
        return nn.Identity()
    if name == "batch":
        return nn.BatchNorm1d(width)
    if name == "layer":
        return nn.LayerNorm(width)
    raise ValueError(f"unknown norm {name!r}")


class Block(nn.Module):
    """One layer gene as modules; parameter names are stable so inheritance can match them."""

    def __init__(self, gene: Layer, in_width: int):
        super().__init__()
        self.linear = nn.Linear(in_width, gene.width)
        if gene.kind == "dense":
            self.norm = _norm(gene.norm, gene.width)
            self.act = _activation(gene.activation)
        elif gene.kind == "adapter":
            self.norm = nn.Identity()
            self.act = nn.Identity()
        else:
            raise ValueError(f"unknown layer kind {gene.kind!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.linear(x)))


class Network(nn.Module):
    """Hidden blocks then a linear head: `layers.<i>.*` and `head.*` in the state dict."""

    def __init__(self, genes: tuple[Layer, ...], in_width: int, out_width: int):
        super().__init__()
        blocks = []
        for gene in genes:
            blocks.append(Block(gene, in_width))
            in_width = gene.width
        self.layers = nn.ModuleList(blocks)
        self.head = nn.Linear(in_width, out_width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.layers:
            x = block(x)
        return self.head(x)


class Generator(Network):
    """Knows its own latent noise, so a duel needs nothing but the module."""

    def __init__(self, genome: Genome, data_dim: int):
        super().__init__(genome.generator, genome.latent_dim, data_dim)
        self.latent_dim = genome.latent_dim
        self.latent_dist = genome.latent_dist

    def noise(self, n: int, rng: torch.Generator) -> torch.Tensor:
        device = self.head.weight.device
        if self.latent_dist == "normal":
            z = torch.randn(n, self.latent_dim, generator=rng)
        elif self.latent_dist == "uniform":
            z = torch.rand(n, self.latent_dim, generator=rng) * 2 - 1
        else:
            raise ValueError(f"unknown latent distribution {self.latent_dist!r}")
        return z.to(device)

    def sample(self, n: int, rng: torch.Generator) -> torch.Tensor:
        return self(self.noise(n, rng))


class Discriminator(Network):
    """Outputs one score per sample; above its loss's threshold means "real"."""

    def __init__(self, genome: Genome, data_dim: int):
        super().__init__(genome.discriminator, data_dim, 1)
        # Least squares pulls real scores to 1 and fake to 0; the other losses split at 0.
        self.threshold = 0.5 if genome.loss == "least_squares" else 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x).squeeze(-1)

    def judges_real(self, x: torch.Tensor) -> torch.Tensor:
        return self(x) > self.threshold


@dataclass
class Pair:
    generator: Generator
    discriminator: Discriminator

    def state_dicts(self) -> dict:
        return {
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
        }

    def load_state_dicts(self, states: dict) -> None:
        self.generator.load_state_dict(states["generator"])
        self.discriminator.load_state_dict(states["discriminator"])

    def parameter_count(self) -> int:
        return sum(p.numel() for net in (self.generator, self.discriminator) for p in net.parameters())


def build_pair(genome: Genome, data_dim: int, device: str | torch.device = "cpu") -> Pair:
    return Pair(Generator(genome, data_dim).to(device), Discriminator(genome, data_dim).to(device))


def make_optimizer(gene: OptimizerGene, params) -> torch.optim.Optimizer:
    beta1, beta2 = gene.betas
    if gene.name == "adam":
        return torch.optim.Adam(params, lr=gene.lr, betas=(beta1, beta2))
    if gene.name == "sgd":
        return torch.optim.SGD(params, lr=gene.lr, momentum=beta1)
    if gene.name == "rmsprop":
        return torch.optim.RMSprop(params, lr=gene.lr, alpha=beta2)
    raise ValueError(f"unknown optimizer {gene.name!r}")
