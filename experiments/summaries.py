"""Short readable summaries of recorded genomes, for the run's console report and the HTML report."""

from __future__ import annotations

LAYER_SYMBOL = {"dense": "", "conv": "c", "deconv": "d", "reshape": "r", "adapter": "a", "noise": "n", "upsample": "u"}


def _layer(gene: dict) -> str:
    symbol = LAYER_SYMBOL[gene["kind"]]
    return symbol if gene["kind"] in ("noise", "upsample") else f"{symbol}{gene['width']}"


def summarize_network(layers: list[dict]) -> str:
    """A layer list as `64-c32-d16`: width with a kind prefix (none for dense); `n` noise, `u` upsample."""
    return "-".join(_layer(gene) for gene in layers)


def summarize_optimizer(optimizer: dict) -> str:
    return f"{optimizer['name']} {optimizer['lr']:.1e}"


def summarize_genome(genome: dict) -> str:
    """Layers as `64` (dense), `c32` (conv), `d16` (deconv), `r32` (reshape), `a8` (adapter), `n`, `u`."""
    return (f"G {summarize_network(genome['generator'])} ({summarize_optimizer(genome['g_optimizer'])}), "
            f"D {summarize_network(genome['discriminator'])} ({summarize_optimizer(genome['d_optimizer'])}), "
            f"latent {genome['latent_dim']} {genome['latent_dist']}")
