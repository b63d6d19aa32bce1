"""Benchmark methods, one file each, all behind the `Method` contract and the registry."""

from metarec.data.protocol import FitData, SupportBatch, Validator
from metarec.methods.base import Method
from metarec.methods.registry import available_methods, create_method, register

__all__ = ["FitData", "Method", "SupportBatch", "Validator", "available_methods", "create_method",
           "register"]
