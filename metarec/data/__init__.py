"""Interaction logs, dataset loaders, the cold-start split (protocol.md) and MAML tasks."""

from metarec.data.interactions import InteractionData
from metarec.data.loaders import load_dataset
from metarec.data.splits import ColdStartSplit, SplitConfig, make_split, split

__all__ = ["InteractionData", "load_dataset", "ColdStartSplit", "SplitConfig", "make_split", "split"]
