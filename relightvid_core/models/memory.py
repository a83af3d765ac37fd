"""Peak memory of one forward, traced on fake tensors: no memory is allocated and no GPU is needed.

The model is built on the meta device, its weights are replaced by FakeTensors on the target device
type, and the forward runs under a dispatch mode that adds every new tensor storage's bytes when an
operator creates it and subtracts them when the storage is freed (a weak reference's callback), which is
what a caching allocator holds minus its rounding and fragmentation. Attention dispatches to the fused
kernel PyTorch picks for fake CPU tensors (flash attention: output and log-sum-exp only), which holds
the same memory as the fused kernels a recent GPU picks. The same tracker runs on real tensors, which is
how ``bench/bench_vram.py`` checks the estimate.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


@dataclass(frozen=True)
class PeakMemory:
    """Bytes of one traced call.

    Attributes:
        weights: parameters and buffers of the model (held throughout).
        peak: the most bytes alive at once, weights included.
        peak_module: dotted name of the innermost module running at the peak ("" when outside any).
        peak_op: the operator whose output made the peak.
    """

    weights: int
    peak: int
    peak_module: str
    peak_op: str

    @property
    def activations(self) -> int:
        return self.peak - self.weights


class StorageTracker(TorchDispatchMode):
    """Counts the bytes of live tensor storages created by operators while active, and their peak."""

    def __init__(self, module_stack: list[str]):
        super().__init__()
        self.live = 0
        self.peak = 0
        self.peak_module = ""
        self.peak_op = ""
        self._module_stack = module_stack
        self._seen: set[int] = set()

    def add_existing(self, tensors: list[torch.Tensor]) -> None:
        """Count tensors that exist before the trace (weights, inputs) once."""
        for tensor in tensors:
            self._track(tensor)
        self.peak = max(self.peak, self.live)

    def _track(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        key = id(storage)
        if key in self._seen:
            return
        size = storage.nbytes()
        self._seen.add(key)
        self.live += size
        weakref.finalize(storage, self._release, key, size)

    def _release(self, key: int, size: int) -> None:
        self._seen.discard(key)
        self.live -= size

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        for value in tree_flatten(result)[0]:
            if isinstance(value, torch.Tensor):
                self._track(value)
        if self.live > self.peak:
            self.peak = self.live
            self.peak_module = self._module_stack[-1] if self._module_stack else ""
            self.peak_op = str(func)
        return result


@contextlib.contextmanager
def _module_names(model: nn.Module, stack: list[str]):
    """Keep ``stack`` equal to the names of the modules whose forward is running (hooks on ``model`` only)."""

    def enter(name: str) -> Callable[..., None]:
        return lambda *_: stack.append(name)

    def leave(*_: Any) -> None:
        stack.pop()  # returns None: a forward hook's return value would replace the module's output

    handles = []
    for name, module in model.named_modules():
        handles.append(module.register_forward_pre_hook(enter(name)))
        handles.append(module.register_forward_hook(leave, always_call=True))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def fake_weights(model: nn.Module, device: str) -> None:
    """Replace every parameter and buffer by a fake tensor of the same shape, strides and dtype on ``device``."""
    for module in model.modules():
        for registry in (module._parameters, module._buffers):
            for name, tensor in registry.items():
                if tensor is not None:
                    fake = torch.empty_strided(tensor.shape, tensor.stride(), dtype=tensor.dtype, device=device)
                    registry[name] = nn.Parameter(fake, requires_grad=False) if isinstance(tensor, nn.Parameter) else fake


def trace_peak(model: nn.Module, run: Callable[[nn.Module], Any], *, fake: bool = True, device: str = "cpu") -> PeakMemory:
    """Peak memory of ``run(model)`` (inputs are created inside ``run``).

    Args:
        model: with ``fake=True`` a model built on the meta device (already in its dtype and memory format),
            whose weights are replaced in place by fake tensors; with ``fake=False`` a real model.
        run: calls the model; it is run under ``torch.no_grad()``.
        fake: trace on fake tensors (an estimate for any size) or on real ones (to check the estimate).
    """
    mode = FakeTensorMode() if fake else contextlib.nullcontext()
    stack: list[str] = []
    tracker = StorageTracker(stack)
    with mode:
        if fake:
            fake_weights(model, device)
        weights = [*model.parameters(), *model.buffers()]
        tracker.add_existing(weights)
        weight_bytes = tracker.live
        with torch.no_grad(), _module_names(model, stack), tracker:
            result = run(model)
        del result
    return PeakMemory(weight_bytes, tracker.peak, tracker.peak_module, tracker.peak_op)
