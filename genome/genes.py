"""The genome: plain, frozen, tensor-free data describing one generator/discriminator pair.

A genome never holds a module or a tensor; `genome.build` turns it into modules. Every value is
checked on construction, so a genome read back from the store or a config is valid or refused.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

ACTIVATIONS = ("relu", "leaky_relu", "elu", "tanh", "gelu", "silu")
NORMS = ("none", "batch", "layer", "spectral")
OPTIMIZERS = ("adam", "sgd", "rmsprop")
LATENT_DISTS = ("normal", "uniform")
# The pair's adversarial loss, evolved as E-GAN and Mustangs do.
LOSSES = ("minimax", "non_saturating", "least_squares", "hinge")
# Computing layers (linear, conv, deconv) carry their normalisation, activation and dropout.
#   dense    linear map to `width` units (flattens an image first)
#   conv     2-D convolution to `width` channels: kernel, stride, padding
#   deconv   transposed 2-D convolution to `width` channels: kernel, stride, padding
#   upsample nearest-neighbour upsampling by `stride`
#   reshape  linear map then view as `width` channels of `size`×`size` (vector to image)
#   noise    adds Gaussian noise times a learned scale, initialised at `scale` (the seed's noise layer)
#   adapter  makes a seam meet after crossover: to `width` units (size 0), or `width` channels of
#            `size`×`size` by a 1×1 convolution and a resize, so the layer behind it sees what it was trained on
LAYER_KINDS = ("dense", "conv", "deconv", "upsample", "reshape", "noise", "adapter")
COMPUTING = ("dense", "conv", "deconv")
WIDTH_KINDS = ("dense", "conv", "deconv", "reshape", "adapter")
SPATIAL = ("conv", "deconv", "upsample")
NETS = ("generator", "discriminator")


def is_image(data_shape: tuple[int, ...]) -> bool:
    """Whether data of this shape are images (channels, height, width) rather than vectors."""
    return len(data_shape) == 3


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def _positive_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")


@dataclass(frozen=True)
class Layer:
    """One hidden layer gene; which fields matter depends on `kind` (see LAYER_KINDS)."""

    kind: str
    width: int = 1  # units or channels
    activation: str = "relu"
    norm: str = "none"
    # (parent slot, layer index in that parent) whose weights this layer starts from; None = fresh.
    # Operators carry it along as layers move, so inheritance needs no bookkeeping of its own.
    origin: tuple[int, int] | None = None
    kernel: int = 3
    stride: int = 1
    padding: int = 1
    size: int = 0  # spatial side of a reshape or image adapter
    dropout: float = 0.0
    scale: float = 0.1  # initial noise scale of a noise layer

    def __post_init__(self) -> None:
        _choice("layer kind", self.kind, LAYER_KINDS)
        _positive_int("layer width", self.width)
        _choice("activation", self.activation, ACTIVATIONS)
        _choice("norm", self.norm, NORMS)
        _positive_int("kernel", self.kernel)
        _positive_int("stride", self.stride)
        if isinstance(self.padding, bool) or not isinstance(self.padding, int) or not 0 <= self.padding < self.kernel:
            raise ValueError(f"padding must be an integer in [0, kernel); got {self.padding!r}")
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 0:
            raise ValueError(f"size must be a non-negative integer; got {self.size!r}")
        if self.kind == "reshape" and self.size < 1:
            raise ValueError(f"a reshape layer needs a positive size; got {self.size!r}")
        if not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1); got {self.dropout!r}")
        if not isinstance(self.scale, (int, float)) or not 0 <= self.scale < 10:
            raise ValueError(f"noise scale must be in [0, 10); got {self.scale!r}")
        object.__setattr__(self, "dropout", float(self.dropout))
        object.__setattr__(self, "scale", float(self.scale))
        if self.origin is not None:
            origin = tuple(self.origin)
            if len(origin) != 2 or not all(isinstance(v, int) and v >= 0 for v in origin):
                raise ValueError(f"layer origin must be (parent slot, layer index); got {self.origin!r}")
            object.__setattr__(self, "origin", origin)


@dataclass(frozen=True)
class OptimizerGene:
    name: str
    lr: float
    # Adam's (beta1, beta2); SGD uses beta1 as momentum, RMSprop beta2 as its smoothing constant.
    betas: tuple[float, float] = (0.5, 0.999)

    def __post_init__(self) -> None:
        _choice("optimizer", self.name, OPTIMIZERS)
        if not isinstance(self.lr, (int, float)) or not 0 < self.lr < 1:
            raise ValueError(f"learning rate must be in (0, 1); got {self.lr!r}")
        object.__setattr__(self, "lr", float(self.lr))
        betas = tuple(self.betas) if isinstance(self.betas, (list, tuple)) else ()
        if len(betas) != 2 or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in betas):
            raise ValueError(f"optimizer betas must be two numbers in [0, 1); got {self.betas!r}")
        object.__setattr__(self, "betas", tuple(float(b) for b in betas))


@dataclass(frozen=True)
class Genome:
    generator: tuple[Layer, ...]
    discriminator: tuple[Layer, ...]
    latent_dim: int
    latent_dist: str
    g_optimizer: OptimizerGene
    d_optimizer: OptimizerGene
    batch_size: int
    steps: int  # training steps per round
    loss: str = "non_saturating"
    data_shape: tuple[int, ...] = (2,)  # (features,) or (channels, height, width): what the generator must yield
    pack: int = 1  # PacGAN: the discriminator judges this many samples at once, so a collapsed generator shows


    def __post_init__(self) -> None:
        for net in NETS:
            layers = tuple(getattr(self, net))
            if not layers:
                raise ValueError(f"{net} needs at least one layer")
            if not all(isinstance(layer, Layer) for layer in layers):
                raise ValueError(f"{net} layers must be Layer genes")
            object.__setattr__(self, net, layers)
        _positive_int("latent_dim", self.latent_dim)
        _choice("latent_dist", self.latent_dist, LATENT_DISTS)
        _positive_int("batch_size", self.batch_size)
        _positive_int("steps", self.steps)
        _positive_int("pack", self.pack)
        _choice("loss", self.loss, LOSSES)
        shape = tuple(self.data_shape) if isinstance(self.data_shape, (list, tuple)) else ()
        if len(shape) not in (1, 3) or not all(isinstance(v, int) and v >= 1 for v in shape):
            raise ValueError(f"data_shape must be (features,) or (channels, height, width); got {self.data_shape!r}")
        if len(shape) == 3 and shape[1] != shape[2]:  # the plan and the builder work on square images
            raise ValueError(f"data_shape must be a square image (channels, side, side); got {self.data_shape!r}")
        object.__setattr__(self, "data_shape", shape)

    @property
    def d_input_shape(self) -> tuple[int, ...]:
        """What the discriminator reads: `pack` samples side by side (features or channels concatenated)."""
        return (self.data_shape[0] * self.pack, *self.data_shape[1:])

    def layers(self, net: str) -> tuple[Layer, ...]:
        _choice("network", net, NETS)
        return getattr(self, net)

    def with_layers(self, net: str, layers: tuple[Layer, ...] | list[Layer]) -> Genome:
        _choice("network", net, NETS)
        return replace(self, **{net: tuple(layers)})

    def stamped(self, slot: int) -> Genome:
        """This genome as parent `slot` of a child: every layer inherits from itself."""
        return replace(
            self,
            **{
                net: tuple(replace(layer, origin=(slot, i)) for i, layer in enumerate(self.layers(net)))
                for net in NETS
            },
        )

    def to_dict(self) -> dict:
        """JSON-shaped (lists, not tuples), so it reads back equal from MongoDB or a checkpoint."""
        out = asdict(self)
        for net in NETS:
            out[net] = [{**layer, "origin": list(layer["origin"]) if layer["origin"] is not None else None}
                        for layer in out[net]]
        for optimizer in ("g_optimizer", "d_optimizer"):
            out[optimizer]["betas"] = list(out[optimizer]["betas"])
        out["data_shape"] = list(self.data_shape)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Genome:
        _reject_unknown("genome", data, cls)
        # Genomes recorded before packing existed have no `pack`: they judged one sample at a time.
        missing = [f.name for f in fields(cls) if f.name not in data and f.name != "pack"]
        if missing:
            raise ValueError(f"genome is missing {missing[0]!r}")
        data = dict(data)
        for net in NETS:
            for layer in data[net]:
                # A stored layer that computes on a width must name it: the default 1 is for kinds that have none.
                if isinstance(layer, dict) and layer.get("kind") in WIDTH_KINDS and "width" not in layer:
                    raise ValueError(f"layer {layer!r} is missing 'width'")
            data[net] = tuple(_build("layer", Layer, layer) for layer in data[net])
        data["g_optimizer"] = _build("optimizer", OptimizerGene, data["g_optimizer"])
        data["d_optimizer"] = _build("optimizer", OptimizerGene, data["d_optimizer"])
        return cls(**data)


def _reject_unknown(what: str, data: dict, cls: type) -> None:
    if not isinstance(data, dict):
        raise ValueError(f"{what} must be a mapping; got {data!r}")
    unknown = sorted(set(data) - {f.name for f in fields(cls)})
    if unknown:
        raise ValueError(f"unknown {what} key {unknown[0]!r}")


def _build(what: str, cls: type, data: dict):
    _reject_unknown(what, data, cls)
    try:
        return cls(**data)
    except TypeError as err:
        raise ValueError(f"bad {what} {data!r}: {err}") from None
