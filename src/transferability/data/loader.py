"""Streamed batches: images from any source, read lazily, converted on the device.

:func:`stream` yields ``(x, y)`` batches on a device from an image tensor, an
:class:`~transferability.data.ImageDataset` or **any** map-style ``Dataset`` of
``(image, label)`` items (image folders, memory-mapped ``.npz`` files, torchvision sets).
Host memory stays bounded by a few batches whatever the dataset's size:

* a ``Dataset`` is read by a ``DataLoader`` with ``workers`` processes, each at most two
  batches ahead, and at most ``ahead_bytes`` (default 1 GiB) of batches read ahead in
  all: larger batches mean fewer batches ahead, then fewer readers (the size of a batch
  is taken from the first item); in-memory tensors are sliced (views, no copy);
* on a GPU, a background thread pins each batch (page-locked memory) while the device
  works, at most two ahead, and the next batch is copied on a side CUDA stream
  (``non_blocking``) while the current one is computed;
* images travel as they are stored (``uint8``, as :class:`~transferability.data.user.
  ImageFolder` reads them, is 4× smaller than float32) and become float in [0, 1], in
  the model's dtype and memory layout, on the device, per batch.

Float images are checked to be finite and in [0, 1] on the device, without waiting on
each batch: a bad value is reported, naming ``name``, when the stream ends.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from .._validation import check_image_range, check_int
from .dataset import ImageDataset

__all__ = ["stream"]

_DONE = object()
_AHEAD_BYTES = 1 << 30


def stream(data, device: torch.device | str = "cpu", *, batch_size: int = 256,
           workers: int | None = None, dtype: torch.dtype = torch.float32,
           channels_last: bool = False, name: str = "x", ahead_bytes: int | None = None
           ) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
    """Batches ``(x, y)`` of ``data`` on ``device``, in order (``y`` is ``None`` for a bare
    image tensor); see the module docstring. ``workers`` processes read a ``Dataset``
    (default: none on a CPU, up to 8 on a GPU), keeping at most ``ahead_bytes`` of batches
    read ahead (default 1 GiB); tensors need none."""
    batch_size = check_int(batch_size, "batch_size")
    ahead_bytes = _AHEAD_BYTES if ahead_bytes is None else check_int(ahead_bytes, "ahead_bytes")
    device = torch.device(device)
    if workers is None:
        workers = min(8, os.cpu_count() or 1) if device.type == "cuda" else 0
    workers = check_int(workers, "workers", minimum=0, maximum=256)
    # pinning and side-stream copies only for data on the host: a tensor already on the
    # GPU (an attack's output, say) is sliced where it is
    overlap = device.type == "cuda" and _on_host(data)
    host = _host_batches(data, batch_size, workers, pin=overlap, name=name,
                         ahead_bytes=ahead_bytes)
    if overlap:
        host = _pinned_in_background(host)
    stats: list[torch.Tensor] = []
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    for xb, yb in _on_device(host, device, overlap):
        if xb.ndim != 4:
            raise ValueError(f"{name}: expected images shaped N×C×H×W, got a batch shaped "
                             f"{tuple(xb.shape)}")
        if xb.dtype == torch.uint8:
            xb = xb.to(dtype).div_(255)
        elif torch.is_floating_point(xb):
            stats.append(torch.stack([torch.isfinite(xb).all().to(xb.dtype),
                                      xb.amin(), xb.amax()]).float())
            xb = xb.to(dtype)
        else:
            raise ValueError(f"{name}: expected float images in [0, 1] or uint8 pixels, got "
                             f"dtype {xb.dtype}")
        yield xb.contiguous(memory_format=fmt), yb
    if stats:  # one wait for the whole stream
        s = torch.stack(stats).cpu()
        check_image_range(bool(s[:, 0].all()), float(s[:, 1].min()), float(s[:, 2].max()),
                          name)


def _on_host(data) -> bool:
    """Whether ``data``'s images live in host memory (a ``Dataset`` always does)."""
    x = data.x if isinstance(data, ImageDataset) else data
    return not isinstance(x, torch.Tensor) or x.device.type == "cpu"


def _host_batches(data, batch_size: int, workers: int, pin: bool, name: str,
                  ahead_bytes: int = _AHEAD_BYTES):
    """CPU batches ``(x, y | None)`` of ``data``."""
    if isinstance(data, torch.Tensor):
        x, y = data, None
    elif isinstance(data, ImageDataset):
        x, y = data.x, data.y
    elif isinstance(data, Dataset):
        workers, prefetch = _read_ahead(data, batch_size, workers, ahead_bytes)
        loader = DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=workers,
                            pin_memory=pin, prefetch_factor=prefetch, persistent_workers=False)
        return (_pair(b, name) for b in loader)
    else:
        raise ValueError(f"{name}: expected an image tensor, an ImageDataset or a torch "
                         f"Dataset of (image, label) items, got {type(data).__name__}")
    return ((x[i:i + batch_size], None if y is None else y[i:i + batch_size])
            for i in range(0, len(x), batch_size))


def _read_ahead(data: Dataset, batch_size: int, workers: int,
               ahead_bytes: int = _AHEAD_BYTES) -> tuple[int, int | None]:
    """``(workers, prefetch_factor)`` for a ``DataLoader`` over ``data`` that keeps at most
    ``ahead_bytes`` of batches in flight (``workers × prefetch_factor`` batches, the
    size of one taken from ``data[0]``): up to two batches per reader, then one, then
    fewer readers (never fewer than one)."""
    if not workers or not len(data):
        return workers, None
    first = data[0]
    tensors = first if isinstance(first, (list, tuple)) else (first,)
    item = sum(int(getattr(t, "nbytes", 0)) for t in tensors)  # tensors and NumPy arrays
    batches = max(1, ahead_bytes // max(1, item * batch_size))
    workers = min(workers, batches)
    return workers, min(2, batches // workers)


def _pair(batch, name: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(batch, torch.Tensor):
        return batch, None
    if isinstance(batch, (list, tuple)) and len(batch) == 2:
        return batch[0], torch.as_tensor(batch[1])
    raise ValueError(f"{name}: expected a Dataset of (image, label) items or of images")


def _pinned_in_background(host, depth: int = 2):
    """``host``'s batches pinned by a background thread, at most ``depth`` ahead."""
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce():
        try:
            for xb, yb in host:
                item = (xb if xb.is_pinned() else xb.pin_memory(),
                        None if yb is None else yb.pin_memory())
                while not stop.is_set():
                    try:
                        ready.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ready.put(_DONE)
        except BaseException as exc:  # raised again in the consumer
            ready.put(exc)

    thread = threading.Thread(target=produce, daemon=True, name="transferability-pin")
    thread.start()
    try:
        while (item := ready.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


def _on_device(host, device: torch.device, overlap: bool):
    """Batches moved to ``device``; with ``overlap`` (host data, CUDA) the next one is copied
    on a side stream while the caller computes on the current one."""
    if not overlap:
        for xb, yb in host:
            yield xb.to(device), None if yb is None else yb.to(device)
        return
    side = torch.cuda.Stream(device)

    def copy(batch):
        with torch.cuda.stream(side):
            return tuple(None if t is None else t.to(device, non_blocking=True) for t in batch)

    batches = iter(host)
    following = next(batches, None)
    following = None if following is None else copy(following)
    while following is not None:
        current = following
        torch.cuda.current_stream(device).wait_stream(side)
        for t in current:
            if t is not None:
                t.record_stream(torch.cuda.current_stream(device))
        nxt = next(batches, None)
        following = None if nxt is None else copy(nxt)
        yield current
