"""Short readable summaries of what a run recorded (genomes, quality, lineage), for the run's console report,
`experiments.runs show` and the HTML report."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from genome.effects import CONTROL, bred_none, went_on_words

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


def quality_line(metrics: dict) -> str:
    if "fid" in metrics:
        return f"FID {metrics['fid']:.2f}, TVD {metrics['tvd']:.3f}"
    return f"{metrics['modes']} modes, {metrics['high_quality']:.1%} high quality, KL {metrics['kl']:.3f}"


def screen_words(share: float, regions: int = 0, refine: int = 0) -> str:
    """How a product was screened (`arena.screen`, `arena.screen_regions`) and refined (`arena.refine`), in words."""
    refined = f"refined {refine} step{'s' if refine != 1 else ''}" if refine else ""
    if share >= 1:
        return refined or "unscreened"
    return f"keeps {share:g}, " + (f"within {regions} regions" if regions else "over all") + \
        (f", {refined}" if refined else "")


def product_screen(product: dict) -> str:
    """How a recorded product was screened, in words; "" when it was not (a run before screening existed)."""
    if not product.get("screen"):
        return ""
    return screen_words(product["screen"], product.get("screen_regions", 0), product.get("refine", 0))


def screened(product: dict, by: str = "") -> str:
    """", screened`by` (how)" for a label, or "" when the product was not screened."""
    words = product_screen(product)
    return f", screened{by} ({words})" if words else ""


def _screened(product: dict) -> str:
    return screened(product, " by the final population's discriminators")


def report_quality(console: Console, quality: dict) -> None:
    """The run's products, as the judge scores them: the champion (chosen by the arena's standing) and
    the mixture; the judge's own pick last, marked as the diagnostic it is."""
    if "champion" in quality:
        console.print(f"Quality, champion by {quality['champion']['by']} ({quality['champion']['individual']}; "
                      f"`experiments.sample RUN_ID` draws from it){_screened(quality['champion'])}: "
                      f"{quality_line(quality['champion'])}")
    if "champion_unscreened" in quality:
        console.print(f"Quality, the same champion unscreened: {quality_line(quality['champion_unscreened'])}")
    if "by_standing" in quality:
        console.print(f"Quality, first by {quality['by_standing']['by']} alone "
                      f"({quality['by_standing']['individual']}): {quality_line(quality['by_standing'])}")
    if "ensemble" in quality:
        weights = ", ".join(f"{w:.2f}" for w in quality["ensemble"]["weights"])
        console.print(f"Quality, mixture of the {len(quality['ensemble']['members'])} first by "
                      f"{quality['ensemble'].get('by', 'fitness')} (weights fitted on real data: {weights})"
                      f"{_screened(quality['ensemble'])}: {quality_line(quality['ensemble'])}")
    if "ensemble_unscreened" in quality:
        console.print(f"Quality, the same mixture unscreened: {quality_line(quality['ensemble_unscreened'])}")
    if "best" in quality:
        console.print(f"Diagnostic only, the judge's pick of the final population ({quality['best']['individual']}),"
                      f" scored on fresh samples: {quality_line(quality['best'])}")


def report_lineage(console: Console, lineage: dict) -> None:
    if not lineage["children"]:
        return
    if bred_none(lineage["children"], lineage["operators"]):
        console.print(f"No child was bred: {went_on_words(lineage['children'])}")
        return
    console.print(f"Children: {lineage['children']}, built on the first try: {lineage['built_first_try']}, "
                  f"mean share of parameters inherited: {lineage['mean_inherited_share']:.1%}")
    effects = lineage["effects"]
    if not effects:
        return
    table = Table(title="Mutations: fitness change of children from their parents, against clones (the control)")
    for column in ("operator", "children", "helped", "hurt", "mean", "gain", "loss", "Δ vs clones", "p"):
        table.add_column(column, justify="left" if column == "operator" else "right", no_wrap=True)
    for name, e in sorted(effects.items(), key=lambda kv: -kv[1]["count"]):
        versus = e.get("vs_control")  # absent from older summaries, None for the control itself
        table.add_row(name + (" (control)" if name == CONTROL else ""), str(e["count"]), str(e["helped"]),
                      str(e["hurt"]), f"{e['mean_change']:+.3f}", f"{e['mean_gain']:+.3f}", f"{e['mean_loss']:+.3f}",
                      f"{versus['difference']:+.3f}" if versus else "", f"{versus['p']:.2g}" if versus else "")
    console.print(table)
