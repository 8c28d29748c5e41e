"""Data: bundled offline datasets, users' data, and task builders.

Every dataset is an :class:`ImageDataset` of float images in [0, 1] shaped N×C×H×W with
int64 labels 0..C−1: the grayscale bundled sets are 1×28×28, the colour task
(``colour-digits``, ``colour-animals``) 3×32×32, users' data keep their own size.
"""

from .dataset import ImageDataset
from .loader import stream
from .registry import (
    Count,
    DatasetInfo,
    Splitter,
    dataset_info,
    family_of,
    list_datasets,
    load_dataset,
    register_dataset,
    split_indices,
    train_test_split,
)
from .spec import DataSummary, dataset_from_spec, describe_dataset
from .tasks import check_per_class, mixture, per_class, relabel, sample, select_classes
from .user import load_image_folder, load_npz

__all__ = [
    "ImageDataset", "DatasetInfo", "list_datasets", "dataset_info", "load_dataset",
    "train_test_split", "select_classes", "relabel", "per_class", "mixture",
    "load_npz", "load_image_folder", "dataset_from_spec", "stream",
    "DataSummary", "describe_dataset", "check_per_class", "split_indices", "Splitter",
    "sample", "Count", "register_dataset", "family_of",
]
