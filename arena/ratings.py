"""Skill ratings from matches, with openskill's Plackett-Luce model (a Bayesian rating like TrueSkill:
a mean and an uncertainty). A match is one generator against one discriminator, so each individual has
two ratings, one per role: a generator's says how strong the discriminators it fooled were, a
discriminator's how strong the generators it caught were. One shared rating would let a strong
discriminator carry a collapsed generator."""

from __future__ import annotations

from openskill.models import PlackettLuce


class Ratings:
    def __init__(self):
        self.model = PlackettLuce()
        self.generators: dict[str, object] = {}
        self.discriminators: dict[str, object] = {}

    def _rating(self, table: dict, individual: str):
        if individual not in table:
            table[individual] = self.model.rating(name=individual)
        return table[individual]

    def record(self, generator: str, discriminator: str, fooled: float) -> None:
        """The generator wins when its fakes fooled the discriminator more often than not; an even share
        is a draw."""
        g, d = self._rating(self.generators, generator), self._rating(self.discriminators, discriminator)
        ranks = [1, 2] if fooled > 0.5 else [2, 1] if fooled < 0.5 else [1, 1]
        [[g_new], [d_new]] = self.model.rate([[g], [d]], ranks=ranks)
        self.generators[generator], self.discriminators[discriminator] = g_new, d_new

    def inherit(self, child: str, parent: str) -> None:
        """A pair that goes on training under a new id keeps what its matches said of it."""
        for table in (self.generators, self.discriminators):
            if parent in table:
                old = table[parent]
                table[child] = self.model.rating(mu=old.mu, sigma=old.sigma, name=child)

    def forget(self, individual: str) -> None:
        """Drop the individual's ratings (the registry keeps what they said of a long-retired one)."""
        self.generators.pop(individual, None)
        self.discriminators.pop(individual, None)

    def standing(self, individual: str) -> dict:
        """`rating` (the generator's) and `d_rating` are the conservative estimates mu − 3σ that rankings
        use; `mu` and `sigma` are the generator's."""
        g = self._rating(self.generators, individual)
        d = self._rating(self.discriminators, individual)
        return {"mu": g.mu, "sigma": g.sigma, "rating": g.ordinal(), "d_rating": d.ordinal()}
