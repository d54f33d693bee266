"""The arena's own settings: how players train, fight and choose parents."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ArenaConfig:
    """Settable under `[arena]` in the TOML."""

    opponents: int = 3
    """How many opponents a player fights per loop (fewer when fewer are published)."""
    duel_samples: int = 256
    """Samples each side generates per duel; also the real samples shown to each discriminator."""
    tournament_size: int = 3
    """Entrants per tournament when choosing a parent."""
    batch_size: int = 128
    """Batch size of first-generation genomes."""
    steps: int = 100
    """Training steps per loop of first-generation genomes."""
    metrics_every: int = 5
    """Each player records its generator's quality (modes, high quality, KL; or FID, TVD) every this many
    generations; 0 records it only for the final population."""
    ensemble: int = 3
    """Generators mixed into the ensemble evaluated at the end of a run (0: none)."""
    architecture: str = "auto"
    """First-generation networks: dense, conv (images only), or auto (conv for images, else dense)."""

    def __post_init__(self) -> None:
        if self.architecture not in ("auto", "dense", "conv"):
            raise ValueError(f"arena.architecture must be auto, dense or conv; got {self.architecture!r}")
        for name in ("metrics_every", "ensemble"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"arena.{name} must be a non-negative integer; got {value!r}")
        for name in ("opponents", "duel_samples", "tournament_size", "batch_size", "steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"arena.{name} must be a positive integer; got {value!r}")
