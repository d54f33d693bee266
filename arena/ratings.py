"""Skill ratings of individuals from their matches, with openskill's Plackett-Luce model (a
Bayesian rating like TrueSkill: a mean and an uncertainty per individual)."""

from __future__ import annotations

from openskill.models import PlackettLuce


class Ratings:
    def __init__(self):
        self.model = PlackettLuce()
        self.ratings: dict[str, object] = {}

    def _rating(self, individual: str):
        if individual not in self.ratings:
            self.ratings[individual] = self.model.rating(name=individual)
        return self.ratings[individual]

    def record(self, generator: str, discriminator: str, fooled: float) -> None:
        """The generator's owner wins when its fakes fooled the discriminator more often than not;
        an even share is a draw."""
        g, d = self._rating(generator), self._rating(discriminator)
        ranks = [1, 2] if fooled > 0.5 else [2, 1] if fooled < 0.5 else [1, 1]
        [[g_new], [d_new]] = self.model.rate([[g], [d]], ranks=ranks)
        self.ratings[generator], self.ratings[discriminator] = g_new, d_new

    def standing(self, individual: str) -> dict:
        """`rating` is the conservative estimate mu − 3σ that rankings use."""
        r = self._rating(individual)
        return {"mu": r.mu, "sigma": r.sigma, "rating": r.ordinal()}

    def win_probability(self, a: str, b: str) -> float:
        return float(self.model.predict_win([[self._rating(a)], [self._rating(b)]])[0])
