"""The game in pure torch: data sets, bouts, duels, standings, selection. No Ray, no MongoDB."""
