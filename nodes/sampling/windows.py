"""Context windows for long clips: core's index-list windows along the frame (batch) axis, with the library's
window schedule and fusion, and each window's own frames of every per-frame condition.

This module talks to ComfyUI: it subclasses core's ``IndexListContextHandler`` and is imported only inside
ComfyUI, when a node first needs it. Two of core's methods are extended: ``set_step`` (core matches the whole
timestep tensor against the schedule, which fails along the batch axis, where every frame has its own copy of
σ) and ``get_resized_cond`` (core hands every window the first frames of the noise-shaped conds and of
ControlNet hints). Per-step bookkeeping uses core's own callbacks.
"""

from __future__ import annotations

import comfy.conds
import comfy.context_windows
import comfy.patcher_extension
import torch

from ...relightvid_core.sampling import ContextWindows, fusion_weights, window_indices

CALLBACK_KEY = "relightvid"


def library_windows(num_frames: int, handler, model_options) -> list[list[int]]:
    """ComfyUI's context-schedule signature over the library's window schedule."""
    return window_indices(num_frames, handler.context_length, handler.context_overlap, handler.closed_loop)


def library_weights(length: int, handler, **_ignored) -> list[float]:
    """ComfyUI's fuse-method signature over the library's fusion weights."""
    return fusion_weights(handler.fuse_method.name, length, handler.context_overlap).tolist()


def window_control(control, window, frames: int):
    """A copy of a ControlNet chain whose hints are the window's frames (hints of another length are kept).

    ControlNet broadcasts a hint longer than the batch by taking its first frames, so every window would
    get frames 0..n; the copy holds only the window's frames. The state ComfyUI sets in ``pre_run`` (the
    timestep range, the model's sampling) is carried over: the copy is used within this step only.
    """
    copied = control.copy()
    for name in ("timestep_range", "model_sampling_current", "control_model"):
        if hasattr(control, name):
            setattr(copied, name, getattr(control, name))
    hint = control.cond_hint_original
    if isinstance(hint, torch.Tensor) and hint.shape[0] == frames:
        copied.cond_hint_original = window.get_tensor(hint)
    if control.previous_controlnet is not None:
        copied.set_previous_controlnet(window_control(control.previous_controlnet, window, frames))
    return copied


class RelightVidContextHandler(comfy.context_windows.IndexListContextHandler):
    """Core's index-list windows along the frame (batch) axis with the library's schedule and fusion, and
    each window's own frames of every per-frame condition: the noise-shaped model conds (the fg ‖ bg
    ``c_concat``) and ControlNet hints, which core hands every window from the clip's first frames."""

    def __init__(self, windows: ContextWindows):
        super().__init__(
            comfy.context_windows.ContextSchedule("relightvid", library_windows),
            comfy.context_windows.ContextFuseMethod(windows.fusion, library_weights),
            context_length=windows.length,
            context_overlap=windows.overlap,
            closed_loop=windows.closed_loop,
            dim=0,
        )
        self._window = None  # the window whose ControlNet copies _controls holds: id(chain) → (chain, copy)
        self._controls = {}
        comfy.patcher_extension.add_callback_with_key(
            comfy.context_windows.IndexListCallbacks.EXECUTE_CLEANUP,
            CALLBACK_KEY,
            forget_window_controls,
            self.callbacks,
        )

    def set_step(self, timestep, model_options):
        # Windows run along the batch here, so the samplers pass one σ per frame; core's step lookup compares
        # the whole tensor with the schedule, which only works for one σ. Every frame has the same σ.
        super().set_step(timestep[:1], model_options)

    def get_resized_cond(self, cond_in, x_in, window, device=None):
        resized = super().get_resized_cond(cond_in, x_in, window, device)
        if resized is None:
            return None
        frames = x_in.shape[self.dim]
        for entry in resized:  # core's copies: changing them leaves the sampler's conds alone
            model_conds = entry.get("model_conds")
            if model_conds:
                entry["model_conds"] = {
                    name: _window_of(value, window, frames, device) for name, value in model_conds.items()
                }
            if entry.get("control") is not None:
                entry["control"] = self._control_for(entry["control"], window, frames)
        return resized

    def _control_for(self, control, window, frames: int):
        """One window copy per ControlNet chain and window, shared by every cond that shares the chain: ComfyUI
        batches conds together only when their control objects are the same object."""
        if window is not self._window:
            self._window, self._controls = window, {}
        if id(control) not in self._controls:
            self._controls[id(control)] = (
                control,
                window_control(control, window, frames),
            )
        return self._controls[id(control)][1]


def forget_window_controls(handler: RelightVidContextHandler, *_step) -> None:
    """Core's end-of-step callback: drop the window copies of ControlNets (and their hints) after every step."""
    handler._window, handler._controls = None, {}


def _window_of(value, window, frames: int, device):
    if isinstance(value, comfy.conds.CONDNoiseShape) and value.cond.shape[0] == frames:
        return value._copy_with(window.get_tensor(value.cond, device))
    return value


def with_context_windows(model, windows: ContextWindows):
    """A clone of ``model`` that samples in ``windows``; memory is estimated for one window, as core does."""
    model = model.clone()
    model.model_options["context_handler"] = RelightVidContextHandler(windows)
    comfy.context_windows.create_prepare_sampling_wrapper(model)
    return model
