"""Genomes of generator/discriminator pairs: plain data, pure operators, one builder. No Ray, no MongoDB."""

from genome.build import Pair, build_pair, make_optimizer
from genome.crossover import breed, crossover
from genome.genes import Genome, Layer, OptimizerGene
from genome.inherit import inherit
from genome.operators import MutationConfig, mutate, within_limits
from genome.population import random_genome
from genome.shapes import plan

__all__ = ["Genome", "Layer", "OptimizerGene", "Pair", "build_pair", "make_optimizer", "inherit",
           "MutationConfig", "breed", "crossover", "mutate", "random_genome", "within_limits", "plan"]
