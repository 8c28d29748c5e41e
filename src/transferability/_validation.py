"""Input validation shared by the whole library (one place, like scikit-learn's ``check_array``).

Every public function checks its arguments here, so a bad input gets the same clear
``ValueError`` naming the argument wherever it enters, never a deep traceback or a
silently wrong number.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import torch

__all__ = [
    "as_float64",
    "as_labels",
    "check_images",
    "check_image_range",
    "check_labels_tensor",
    "check_same_length",
    "check_min_length",
    "check_more_samples_than_classes",
    "check_positive",
    "check_eps",
    "check_int",
    "check_fraction",
    "check_count",
    "check_unit_interval",
    "check_choice",
    "check_each",
    "check_probabilities",
    "check_seed",
    "check_name",
    "model_device",
    "model_dtype",
    "check_same_device",
    "Constraint",
    "Integer",
    "Seed",
    "Positive",
    "OneOf",
    "Text",
    "Flag",
    "Table",
    "Each",
    "Optional",
    "seed_arg",
    "positive_arg",
    "count_arg",
]

#: Seeds are integers in [0, SEED_MAX]: every random generator of NumPy and torch takes them.
SEED_MAX = 2**32 - 1
#: Names that become parts of file names (zoo models, studies): a conservative character set.
NAME_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
NAME_MAX = 100


def _to_numpy(a, name: str) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu()
        if a.dtype in (torch.bfloat16, torch.float16):
            a = a.float()  # NumPy has no bfloat16
        return a.numpy()
    try:
        return np.asarray(a)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise ValueError(f"{name}: expected an array or tensor, got {type(a).__name__}") from exc


def as_float64(a, name: str, *, ndim: int | tuple[int, ...] | None = None) -> np.ndarray:
    """Return ``a`` (NumPy or torch) as a finite float64 NumPy array with the given rank."""
    arr = _to_numpy(a, name)
    if arr.dtype == object or np.iscomplexobj(arr) or not (
            np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name}: expected real numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if arr.ndim not in allowed:
            raise ValueError(f"{name}: expected a {' or '.join(map(str, allowed))}-D array, "
                             f"got shape {tuple(arr.shape)}")
    # one reduction is enough when it is finite; only then is every element checked
    if arr.size and not np.isfinite(arr.sum()) and not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name}: contains {bad} NaN or inf value(s)")
    return arr


def as_labels(a, name: str, *, num_classes: int | None = None, min_classes: int = 2,
              contiguous: bool = True) -> np.ndarray:
    """Return integer class labels as a 1-D int64 array, checked to be 0..C-1.

    With ``contiguous=True`` every class 0..max must occur (the message lists the missing
    ones); ``num_classes`` fixes C; ``min_classes`` rejects degenerate single-class tasks.
    """
    arr = _to_numpy(a, name)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of labels, got shape {tuple(arr.shape)}")
    if arr.size == 0:
        raise ValueError(f"{name}: is empty")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ValueError(f"{name}: expected integer class labels, got non-integer values")
    elif not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool):
        raise ValueError(f"{name}: expected integer class labels, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.min() < 0:
        raise ValueError(f"{name}: labels must be 0..C-1, found negative label {int(arr.min())}")
    if num_classes is not None and arr.max() >= num_classes:
        raise ValueError(f"{name}: labels must be 0..{num_classes - 1}, found {int(arr.max())}")
    present = np.unique(arr)
    if contiguous:
        top = int(arr.max()) + 1 if num_classes is None else num_classes
        missing = np.setdiff1d(np.arange(top), present)
        if missing.size:
            shown = ", ".join(map(str, missing[:10])) + (" ..." if missing.size > 10 else "")
            raise ValueError(f"{name}: labels must be 0..C-1 with every class present; "
                             f"missing class(es) {shown} (relabel to consecutive ids)")
    if present.size < min_classes:
        raise ValueError(f"{name}: needs at least {min_classes} classes, got {present.size}")
    return arr


def check_same_length(**arrays) -> int:
    """Check that all named arrays have the same first dimension; return it."""
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) > 1:
        desc = ", ".join(f"{k} has {n}" for k, n in lengths.items())
        raise ValueError(f"length mismatch: {desc} samples")
    return next(iter(lengths.values()))


def check_min_length(a, name: str, minimum: int) -> int:
    """Check that ``a`` has at least ``minimum`` entries along its first axis; return its length."""
    n = len(a)
    if n < minimum:
        raise ValueError(f"{name}: needs at least {minimum} entries, got {n}")
    return n


def check_more_samples_than_classes(n: int, num_classes: int, name: str) -> None:
    """Check ``n > num_classes``: with one sample per class there is no within-class evidence."""
    if n <= num_classes:
        raise ValueError(f"{name}: {n} samples for {num_classes} classes; need more samples "
                         "than classes")


def check_probabilities(p: np.ndarray, name: str, *, atol: float = 1e-3) -> np.ndarray:
    """Check that rows of a 2-D float array are probability vectors."""
    if p.size and (p.min() < 0 or p.max() > 1):
        raise ValueError(f"{name}: probabilities must lie in [0, 1] "
                         "(hint: pass softmax outputs, not logits)")
    sums = p.sum(axis=1)
    if not np.allclose(sums, 1.0, atol=atol):
        worst = float(np.abs(sums - 1).max())
        raise ValueError(f"{name}: rows must sum to 1 (largest deviation {worst:.3g}); "
                         "hint: pass softmax outputs, not logits")
    return p


def check_images(x, name: str = "x") -> torch.Tensor:
    """Check an image batch: a float tensor N×C×H×W with values in [0, 1]."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor of images, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{name}: expected images shaped N×C×H×W, got shape {tuple(x.shape)}")
    if not torch.is_floating_point(x):
        raise ValueError(f"{name}: expected a float tensor in [0, 1], got dtype {x.dtype}")
    # one transfer of three reductions (NaN and inf propagate into the sum; a sum that
    # overflows is checked pixel by pixel); on a GPU, one wait
    if x.numel():
        flat = x.detach()
        total, low, high = torch.stack([flat.sum(), *torch.aminmax(flat)]).tolist()
        finite = math.isfinite(total) or bool(torch.isfinite(flat).all())
        check_image_range(finite, low, high, name)
    return x


def check_image_range(finite: bool, low: float, high: float, name: str = "x") -> None:
    """Refuse images that are not finite or leave [0, 1] (given their extremes)."""
    if not finite:
        raise ValueError(f"{name}: contains NaN or inf")
    if low < 0 or high > 1:
        raise ValueError(f"{name}: values must lie in [0, 1] (normalisation belongs inside the "
                         f"model), got range [{low:.3g}, {high:.3g}]")


def check_labels_tensor(y, name: str = "y", *, n: int | None = None,
                        num_classes: int | None = None, values: bool = True) -> torch.Tensor:
    """Check a label tensor: 1-D integer, length ``n``, values in 0..num_classes-1
    (``values=False``: type and length only, no wait for a GPU; check the values later)."""
    if not isinstance(y, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor of labels, got {type(y).__name__}")
    if y.ndim != 1 or torch.is_floating_point(y) or y.dtype == torch.bool:
        raise ValueError(f"{name}: expected a 1-D integer tensor, got shape {tuple(y.shape)} "
                         f"dtype {y.dtype}")
    if n is not None and len(y) != n:
        raise ValueError(f"{name}: expected {n} labels, got {len(y)}")
    if y.numel() and values:
        low, high = torch.stack(torch.aminmax(y)).tolist()  # one transfer
        if low < 0:
            raise ValueError(f"{name}: labels must be >= 0, found {low}")
        if num_classes is not None and high >= num_classes:
            raise ValueError(f"{name}: labels must be 0..{num_classes - 1} for a model with "
                             f"{num_classes} outputs, found {high}")
    return y.long()


def check_positive(value, name: str, *, allow_zero: bool = False) -> float:
    """Check a finite number > 0 (or >= 0 with ``allow_zero``)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a number, got {value!r}") from None
    if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}: expected a finite number {bound}, got {value!r}")
    return v


def check_eps(value, name: str = "eps") -> float:
    """The one rule for every attack's radius ε: a finite number > 0 (at ε = 0 an attack
    does nothing, and a study that meant one would report no transfer). The attacks, their
    :class:`~transferability.attacks.AttackSpec`, the training methods that attack and the
    command line's ``--eps`` all check it here."""
    return check_positive(value, name)


def check_count(value, name: str) -> int:
    """Check a positive integer (a number of resamples, steps, ...)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name}: expected a positive integer, got {value!r}")
    return int(value)


def check_fraction(value, name: str) -> float:
    """Check a number strictly between 0 and 1."""
    v = check_positive(value, name)
    if v >= 1:
        raise ValueError(f"{name}: expected a number in (0, 1), got {value!r}")
    return v


def check_int(value, name: str, *, minimum: int = 1, maximum: int | None = None) -> int:
    """Check an integer (not a bool or a float) in ``[minimum, maximum]``."""
    bounds = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum \
            or (maximum is not None and value > maximum):
        raise ValueError(f"{name}: expected an integer {bounds}, got {value!r}")
    return int(value)


def check_unit_interval(value, name: str) -> float:
    """Check a number in the closed interval [0, 1] (a probability)."""
    v = check_positive(value, name, allow_zero=True)
    if v > 1:
        raise ValueError(f"{name}: expected a number in [0, 1], got {value!r}")
    return v


def check_choice(value, name: str, choices: Iterable[str]) -> str:
    """Check that ``value`` is one of ``choices``; the error lists them."""
    options: Sequence[str] = sorted(choices)
    if value not in options:
        raise ValueError(f"{name}: unknown value {value!r}; expected one of: {', '.join(options)}")
    return value


def check_each(values, name: str, check, **kwargs) -> tuple:
    """Check a non-empty sequence item by item with ``check(item, name, **kwargs)``; return
    the checked items as a tuple (``seeds``, ``rhos``, ``radii`` of a study's settings)."""
    if isinstance(values, str | bytes | Mapping) or not isinstance(values, Iterable):
        raise ValueError(f"{name}: expected a sequence of values, got {values!r}")
    values = tuple(values)
    if not values:
        raise ValueError(f"{name}: needs at least one value")
    return tuple(check(v, name, **kwargs) for v in values)


def check_seed(value, name: str = "seed") -> int:
    """Check a seed: an integer in [0, 2**32 - 1] (one rule for the library and the CLI)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or \
            not 0 <= value <= SEED_MAX:
        raise ValueError(f"{name}: expected an integer in [0, {SEED_MAX}], got {value!r}")
    return int(value)


def check_name(value, name: str = "name") -> str:
    """Check a name that becomes part of a file name: letters, digits and ``-_.``, not
    starting with a dot, at most 100 characters (no path separators, no NUL)."""
    if not isinstance(value, str):
        raise ValueError(f"{name}: expected a string, got {type(value).__name__}")
    if len(value) > NAME_MAX:
        raise ValueError(f"{name}: at most {NAME_MAX} characters, got {len(value)}")
    if not NAME_PATTERN.fullmatch(value):
        raise ValueError(f"{name}: {value!r} is not a safe name; use letters, digits and "
                         "'-_.' (not starting with '.'), no path separators")
    return value


def model_device(model: torch.nn.Module) -> torch.device:
    """The device a model lives on (of its first parameter or buffer; CPU if it has none)."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def model_dtype(model: torch.nn.Module) -> torch.dtype:
    """The floating dtype of a model's first floating parameter or buffer (float32 if none)."""
    for tensors in (model.parameters(), model.buffers()):  # lazily: the first one decides
        for t in tensors:
            if torch.is_floating_point(t):
                return t.dtype
    return torch.float32


def check_same_device(**models: torch.nn.Module) -> torch.device:
    """Check that the named arguments are modules on one device; return that device.

    ``check_same_device(from_model=g, to_model=f)`` raises a ``ValueError`` naming each
    model and its device when they differ (inputs are then moved to the common device).
    """
    for name, model in models.items():
        if not isinstance(model, torch.nn.Module):
            raise ValueError(f"{name}: expected a torch.nn.Module, got {type(model).__name__}")
    devices = {name: model_device(model) for name, model in models.items()}
    if len(set(devices.values())) > 1:
        desc = ", ".join(f"{name} is on {device}" for name, device in devices.items())
        raise ValueError(f"models on different devices: {desc}; move them to one device")
    return next(iter(devices.values()))


# ---- parameter constraints: each setting's rule, declared once ---------------------------

class Constraint:
    """The rule of one parameter, declared once beside it (scikit-learn's parameter
    constraints): ``check(value, name)`` returns the value normalised or raises a
    ``ValueError`` naming ``name``; ``parse(text)`` reads one command-line word and
    ``nargs`` says how many (``"+"``: a sequence); ``invalid()`` gives values the rule
    refuses, from which the tests of every declared parameter are generated;
    ``describe()`` says what is expected, for help texts."""

    nargs: str | None = None

    def check(self, value, name: str):
        raise NotImplementedError

    def parse(self, text: str):
        return text

    def invalid(self) -> tuple:
        return ()

    def describe(self) -> str:
        return ""

    def arg_type(self, option: str):
        """An argparse ``type`` for ``option``: the word parsed and checked by this rule, so
        a bad value exits with status 2 and a line naming the option, before any work."""
        def convert(text: str):
            try:
                return self.check(self.parse(text), option)
            except (ValueError, TypeError, ZeroDivisionError) as exc:
                message = str(exc).removeprefix(f"{option}: ")
                raise argparse.ArgumentTypeError(message or f"invalid value {text!r}") from None
        convert.__name__ = self.describe() or "value"
        return convert


class Integer(Constraint):
    """An integer (not a bool) in ``[minimum, maximum]``."""

    def __init__(self, minimum: int = 1, maximum: int | None = None):
        self.minimum, self.maximum = minimum, maximum

    def check(self, value, name: str) -> int:
        return check_int(value, name, minimum=self.minimum, maximum=self.maximum)

    def parse(self, text: str) -> int:
        return int(text)

    def invalid(self) -> tuple:
        return (self.minimum - 1, 1.5, True) + (() if self.maximum is None else
                                                 (self.maximum + 1,))

    def describe(self) -> str:
        return "integer"


class Seed(Integer):
    """A seed: an integer in [0, 2**32 - 1] (:func:`check_seed`)."""

    def __init__(self):
        super().__init__(0, SEED_MAX)

    def check(self, value, name: str) -> int:
        return check_seed(value, name)

    def describe(self) -> str:
        return "seed"


class Positive(Constraint):
    """A finite number > 0 (``allow_zero``: >= 0), written ``0.031`` or ``8/255`` on the
    command line."""

    def __init__(self, allow_zero: bool = False):
        self.allow_zero = allow_zero

    def check(self, value, name: str) -> float:
        if isinstance(value, bool):
            raise ValueError(f"{name}: expected a number, got {value!r}")
        return check_positive(value, name, allow_zero=self.allow_zero)

    def parse(self, text: str) -> float:
        top, _, bottom = text.partition("/")
        return float(top) / float(bottom) if bottom else float(top)

    def invalid(self) -> tuple:
        return (-1.0, math.inf, "x") + (() if self.allow_zero else (0.0,))

    def describe(self) -> str:
        return "number"


class OneOf(Constraint):
    """One of ``choices``."""

    def __init__(self, *choices: str):
        self.choices = choices

    def check(self, value, name: str) -> str:
        return check_choice(value, name, self.choices)

    def invalid(self) -> tuple:
        return ("no-such-choice", 3)

    def describe(self) -> str:
        return "{" + ",".join(self.choices) + "}"


class Text(Constraint):
    """A non-empty string (a dataset or model argument, a path)."""

    def check(self, value, name: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{name}: expected a non-empty string, got {value!r}")
        return value

    def invalid(self) -> tuple:
        return ("", 3)

    def describe(self) -> str:
        return "text"


class Flag(Constraint):
    """True or False; on the command line, a switch."""

    nargs = 0

    def check(self, value, name: str) -> bool:
        if not isinstance(value, bool | np.bool_):
            raise ValueError(f"{name}: expected True or False, got {value!r}")
        return bool(value)

    def invalid(self) -> tuple:
        return ("yes", 1)


class Table(Constraint):
    """A mapping (names to specs), at least ``min_len`` entries; a dict once checked. Not a
    command-line option."""

    def __init__(self, min_len: int = 0):
        self.min_len = min_len

    def check(self, value, name: str) -> dict:
        if not isinstance(value, Mapping):
            raise ValueError(f"{name}: expected a dict, got {type(value).__name__}")
        if len(value) < self.min_len:
            raise ValueError(f"{name}: needs at least {self.min_len} entr"
                             f"{'y' if self.min_len == 1 else 'ies'}")
        return dict(value)

    def invalid(self) -> tuple:
        return ("x", 3) + (({},) if self.min_len else ())


class Each(Constraint):
    """A non-empty sequence of values that each follow ``item``; a tuple once checked."""

    nargs = "+"

    def __init__(self, item: Constraint):
        self.item = item

    def check(self, value, name: str) -> tuple:
        return check_each(value, name, self.item.check)

    def parse(self, text: str):
        return self.item.parse(text)

    def arg_type(self, option: str):
        return self.item.arg_type(option)

    def invalid(self) -> tuple:
        return ((), *((bad,) for bad in self.item.invalid()))

    def describe(self) -> str:
        return self.item.describe()


class Optional(Constraint):
    """None, or a value that follows ``rule``."""

    def __init__(self, rule: Constraint):
        self.rule, self.nargs = rule, rule.nargs

    def check(self, value, name: str):
        return None if value is None else self.rule.check(value, name)

    def parse(self, text: str):
        return self.rule.parse(text)

    def arg_type(self, option: str):
        return self.rule.arg_type(option)

    def invalid(self) -> tuple:
        return self.rule.invalid()

    def describe(self) -> str:
        return self.rule.describe()


# ---- command-line values: the same checks, as argparse types -------------------------------

def seed_arg(text: str) -> int:
    """A seed on the command line (:func:`check_seed`)."""
    try:
        return check_seed(int(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("seed: ")) from None


def positive_arg(text: str) -> float:
    """A finite number > 0 on the command line (:func:`check_positive`)."""
    try:
        return check_positive(float(text), "value")
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}") from None


def radius_arg(text: str) -> float:
    """A radius > 0 as a number (``0.031``) or a fraction (``8/255``); ``8/0`` is refused."""
    try:
        top, _, bottom = text.partition("/")
        value = float(top) / float(bottom) if bottom else float(top)
        return check_positive(value, "value")
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"expected a number > 0 such as 0.031 or 8/255, got "
                                         f"{text!r}") from None


def count_arg(maximum: int | None = None):
    """Positive integers up to ``maximum`` on the command line (:func:`check_int`)."""
    def parse(text: str) -> int:
        try:
            return check_int(int(text), "value", maximum=maximum)
        except ValueError:
            bound = "" if maximum is None else f" up to {maximum:,}"
            raise argparse.ArgumentTypeError(f"expected a positive integer{bound}, got "
                                             f"{text!r}") from None
    return parse
