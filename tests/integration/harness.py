"""Start a real ComfyUI (from ``COMFYUI_PATH``) on the CPU with this pack, small inputs and random weights.

The server runs with ``COMFYUI_PYTHON`` (default: this interpreter): ComfyUI needs a torch with a matching
torchvision, which the library's own venv may not have. Nothing here installs or downloads anything; the
pack is made visible through a ``custom_nodes`` entry of a temporary extra_model_paths.yaml pointing at a
folder that holds a symlink to this checkout.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from weights import CHECKPOINT, CONTROLNET

REPO_ROOT = Path(__file__).resolve().parents[2]
PACK_FOLDER = "ComfyUI-RelightVid"
FRAMES, SIZE = 4, 64
START_TIMEOUT = 240.0


def comfyui_path() -> Path | None:
    value = os.environ.get("COMFYUI_PATH")
    return Path(value) if value else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_video(path: Path, frames: np.ndarray, fps: int = 8) -> None:
    """(T, H, W, 3) uint8 RGB → H.264 mp4."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def write_inputs(folder: Path) -> None:
    """The files the example workflows name (the official asset names), at 64x64 and 4 frames (plus a 2-frame
    background)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    ys, xs = np.mgrid[0:SIZE, 0:SIZE]
    subject = np.stack([np.full((SIZE, SIZE, 3), (40 + 30 * t, 90, 160), np.uint8) for t in range(FRAMES)])
    subject[:, 16:48, 16:48] = rng.integers(100, 255, (FRAMES, 32, 32, 3), dtype=np.uint8)
    disc = (((ys - 32) ** 2 + (xs - 32) ** 2) < 18**2).astype(np.uint8) * 255
    write_video(folder / "lion.mp4", subject)
    write_video(folder / "lion_mask.mp4", np.repeat(disc[None, :, :, None], 3, axis=3).repeat(FRAMES, axis=0))
    (folder / "mask" / "lion").mkdir(parents=True, exist_ok=True)
    for index in range(FRAMES):
        cv2.imwrite(str(folder / "mask" / "lion" / f"{index:04d}.png"), disc)
    background = (np.linspace(0, 255, SIZE)[None, None, :, None] * np.ones((FRAMES, SIZE, 1, 3))).astype(np.uint8)
    write_video(folder / "stage_light2.mp4", background)
    write_video(folder / "background_short.mp4", background[:2])
    cv2.imwrite(str(folder / "background.png"), background[0][..., ::-1])
    radiance = np.full((16, 32, 3), 0.3, np.float32)
    radiance[4:6, 8:10] = 25.0
    cv2.imwrite(str(folder / "environment.hdr"), radiance)


@dataclass
class ComfyServer:
    """A running ComfyUI; ``url`` is its address, ``log`` its combined output."""

    process: subprocess.Popen
    url: str
    root: Path
    log: Path

    @property
    def input_dir(self) -> Path:
        return self.root / "input"

    @property
    def output_dir(self) -> Path:
        return self.root / "output"

    def get(self, path: str, timeout: float = 30.0):
        with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
            return json.loads(response.read())

    def post(self, path: str, body: dict, timeout: float = 30.0):
        request = urllib.request.Request(
            self.url + path, json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = response.read()
            return json.loads(data) if data else None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(comfy: Path, root: Path, models: Path, python: str) -> ComfyServer:
    """Start ComfyUI with this pack, the given models root and a fresh input/output/user tree under ``root``."""
    custom_nodes = root / "custom_nodes"
    custom_nodes.mkdir(parents=True, exist_ok=True)
    link = custom_nodes / PACK_FOLDER
    if not link.exists():
        link.symlink_to(REPO_ROOT, target_is_directory=True)
    write_inputs(root / "input")
    (root / "output").mkdir(exist_ok=True)
    (root / "user").mkdir(exist_ok=True)
    config = root / "extra_model_paths.yaml"
    config.write_text(
        "relightvid_integration:\n"
        f"  base_path: {models}\n"
        "  checkpoints: checkpoints\n"
        "  relightvid: relightvid\n"
        "  controlnet: controlnet\n"
        f"  custom_nodes: {custom_nodes}\n"
        # A per-server folder for files a test makes (e.g. a fake SDXL checkpoint), never the shared weights.
        "relightvid_integration_scratch:\n"
        f"  base_path: {root / 'models'}\n"
        "  checkpoints: checkpoints\n"
    )
    (root / "models" / "checkpoints").mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = root / "comfyui.log"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "DO_NOT_TRACK": "1",
        "PYTHONUNBUFFERED": "1",
    }
    command = [
        python,
        "main.py",
        "--cpu",
        "--listen",
        "127.0.0.1",
        "--port",
        str(port),
        "--disable-auto-launch",
        "--disable-api-nodes",
        "--extra-model-paths-config",
        str(config),
        "--input-directory",
        str(root / "input"),
        "--output-directory",
        str(root / "output"),
        "--user-directory",
        str(root / "user"),
        "--database-url",
        "sqlite:///:memory:",
        "--preview-method",
        "latent2rgb",
    ]
    with log.open("w") as handle:
        process = subprocess.Popen(command, cwd=comfy, env=env, stdout=handle, stderr=subprocess.STDOUT)
    server = ComfyServer(process, f"http://127.0.0.1:{port}", root, log)
    deadline = time.time() + START_TIMEOUT
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ComfyUI exited with {process.returncode} while starting; see {log}")
        try:
            server.get("/system_stats", timeout=2)
            return server
        except OSError:
            time.sleep(1)
    server.stop()
    raise RuntimeError(f"ComfyUI did not answer within {START_TIMEOUT:.0f} s; see {log}")


class EventStream:
    """A minimal websocket client (RFC 6455, text frames only) for ComfyUI's ``/ws`` progress events."""

    def __init__(self, url: str, client_id: str):
        host, port = url.removeprefix("http://").split(":")
        self.socket = socket.create_connection((host, int(port)), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        self.socket.sendall(
            f"GET /ws?clientId={client_id} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        header = b""
        while b"\r\n\r\n" not in header:
            header += self.socket.recv(1)
        if b" 101 " not in header.split(b"\r\n")[0]:
            raise RuntimeError(f"websocket upgrade refused: {header[:100]!r}")

    def _read(self, count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = self.socket.recv(count - len(data))
            if not chunk:
                raise ConnectionError("websocket closed")
            data += chunk
        return data

    def next_event(self, timeout: float) -> dict | None:
        """The next JSON event, or None on timeout; binary frames (previews) are skipped."""
        self.socket.settimeout(timeout)
        try:
            while True:
                first, second = self._read(2)
                length = second & 0x7F
                if length == 126:
                    length = struct.unpack(">H", self._read(2))[0]
                elif length == 127:
                    length = struct.unpack(">Q", self._read(8))[0]
                payload = self._read(length)
                if first & 0x0F == 1:
                    return json.loads(payload)
        except TimeoutError:
            return None

    def close(self) -> None:
        self.socket.close()


def small_run_settings(name: str, prefix: str) -> list[str]:
    """--set assignments that shrink a workflow to 64x64 px, 4 frames, 2 steps with the random weights."""
    settings = [f"1.ckpt_name={CHECKPOINT}", "15.steps=2", f"18.filename_prefix=relightvid_test/{prefix}"]
    if name == "relightvid_long_video_windows":
        settings += ["21.width=64", "21.height=64", "15.window_length=2", "15.window_overlap=1"]
    else:
        settings += ["9.width=64", "9.height=64"]
    if name == "relightvid_controlnet":
        settings.append(f"26.control_net_name={CONTROLNET}")
    return settings


def seed_setting(name: str, seed: int) -> str:
    """The --set assignment of a workflow's seed (SamplerCustomAdvanced graphs seed their RandomNoise node)."""
    return f"24.noise_seed={seed}" if name == "relightvid_custom_sampling" else f"15.seed={seed}"
