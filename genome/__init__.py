"""Genomes of generator/discriminator pairs: plain data, pure operators, one builder. No Ray, no MongoDB."""

from genome.build import Pair, build_pair, make_optimizer
from genome.genes import Genome, Layer, OptimizerGene
from genome.inherit import inherit
from genome.operators import MutationConfig, breed, crossover, mutate, random_genome

__all__ = ["Genome", "Layer", "OptimizerGene", "Pair", "build_pair", "make_optimizer", "inherit",
           "MutationConfig", "breed", "crossover", "mutate", "random_genome"]
