#!/usr/bin/env python3
"""Queue an API-format workflow on a running ComfyUI, once or once per clip, and report where results went.

Examples::

    # one run, with two inputs changed
    python queue_workflow.py api/relightvid_background_video.json --set 4.file=dancer.mp4 --set RelightVidSampler.seed=7

    # the same graph for many clips in a row: each clip is uploaded and put into the subject's Load Video
    python queue_workflow.py api/relightvid_light_preset.json --clips clips/*.mp4 --clip-input 4.file \\
        --mask-clips masks/*.mp4 --mask-input 6.file

``--set KEY=VALUE`` addresses an input as ``<node id>.<input>``, ``<class_type>.<input>`` (every node of that
type) or ``<node title>.<input>``; VALUE is read as JSON when it parses (numbers, true/false, lists) and as
a string otherwise. A prompt that ComfyUI accepts with non-empty ``node_errors`` counts as failed (ComfyUI
silently drops the invalid outputs then). Progress comes over the websocket when ``websocket-client`` is
installed, otherwise by polling ``/history``. Standard library only otherwise; exit status 1 if any run failed.
"""

from __future__ import annotations

import argparse
import copy
import json
import mimetypes
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_SERVER = "http://127.0.0.1:8188"
POLL_SECONDS = 1.0


class WorkflowError(Exception):
    """A workflow could not be queued or did not finish successfully; the message says why."""


# --- the graph ------------------------------------------------------------------------------------------


def parse_value(text: str):
    """JSON when it parses (7, 1.5, true, [\"4\", 0]), else the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def matching_nodes(graph: dict, selector: str) -> list[str]:
    """Node ids a selector names: an id, a class_type, or a title (``_meta.title``)."""
    if selector in graph:
        return [selector]
    by_type = [node_id for node_id, node in graph.items() if node.get("class_type") == selector]
    if by_type:
        return by_type
    return [node_id for node_id, node in graph.items() if node.get("_meta", {}).get("title") == selector]


def substitute(graph: dict, assignments: list[str]) -> dict:
    """A copy of ``graph`` with each ``SELECTOR.INPUT=VALUE`` applied.

    Raises:
        WorkflowError: a malformed assignment, or a selector/input that names nothing in the graph.
    """
    graph = copy.deepcopy(graph)
    for assignment in assignments:
        target, separator, value = assignment.partition("=")
        selector, dot, name = target.rpartition(".")
        if not separator or not dot or not selector or not name:
            raise WorkflowError(f"--set {assignment!r}: expected NODE.INPUT=VALUE, e.g. 15.steps=30")
        nodes = matching_nodes(graph, selector)
        if not nodes:
            raise WorkflowError(f"--set {assignment!r}: no node with id, class_type or title {selector!r}")
        for node_id in nodes:
            inputs = graph[node_id]["inputs"]
            if name not in inputs:
                raise WorkflowError(
                    f"--set {assignment!r}: node {node_id} ({graph[node_id]['class_type']}) has no input {name!r}"
                )
            inputs[name] = parse_value(value)
    return graph


# --- the server -----------------------------------------------------------------------------------------


@dataclass
class Client:
    server: str = DEFAULT_SERVER
    client_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    timeout: float = 30.0

    def url(self, path: str) -> str:
        return self.server.rstrip("/") + path

    def request(self, path: str, body: dict | None = None, data: bytes | None = None, headers: dict | None = None):
        if body is not None:
            data, headers = json.dumps(body).encode(), {"Content-Type": "application/json"}
        request = urllib.request.Request(self.url(path), data=data, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            payload = error.read()
            try:
                return {"http_status": error.code, **json.loads(payload)}
            except json.JSONDecodeError:
                raise WorkflowError(f"{path}: HTTP {error.code}: {payload[:300]!r}") from error
        except urllib.error.URLError as error:
            raise WorkflowError(f"cannot reach ComfyUI at {self.server} ({error.reason}); is it running?") from error

    def upload(self, path: Path, subfolder: str = "") -> str:
        """Upload a file to ComfyUI's input folder; returns the name to put in a Load Video/Image input."""
        boundary = uuid.uuid4().hex
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{path.name}"\r\n'
            f"Content-Type: {kind}\r\n\r\n".encode()
            + path.read_bytes()
            + b"\r\n",
            f'--{boundary}\r\nContent-Disposition: form-data; name="subfolder"\r\n\r\n{subfolder}\r\n'.encode(),
            f'--{boundary}\r\nContent-Disposition: form-data; name="overwrite"\r\n\r\ntrue\r\n'.encode(),
            f"--{boundary}--\r\n".encode(),
        ]
        reply = self.request(
            "/upload/image", data=b"".join(parts), headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}
        )
        if not isinstance(reply, dict) or "name" not in reply:
            raise WorkflowError(f"uploading {path} failed: {reply}")
        return f"{reply['subfolder']}/{reply['name']}" if reply.get("subfolder") else reply["name"]

    def queue(self, graph: dict) -> str:
        """POST /prompt; returns the prompt id.

        Raises:
            WorkflowError: the prompt was refused, or accepted with node_errors (outputs silently dropped).
        """
        reply = self.request("/prompt", {"prompt": graph, "client_id": self.client_id})
        errors = reply.get("node_errors") or {}
        if "error" in reply or errors:
            raise WorkflowError(describe_refusal(reply))
        return reply["prompt_id"]

    def history(self, prompt_id: str) -> dict | None:
        return self.request(f"/history/{prompt_id}").get(prompt_id)

    def interrupt(self) -> None:
        self.request("/interrupt", {})


def describe_refusal(reply: dict) -> str:
    lines = []
    if "error" in reply:
        error = reply["error"]
        lines.append(f"{error.get('message', error)}: {error.get('details', '')}".rstrip(": "))
    for node_id, entry in (reply.get("node_errors") or {}).items():
        for error in entry.get("errors", []):
            lines.append(
                f"node {node_id} ({entry.get('class_type')}): {error.get('message')}: {error.get('details', '')}"
            )
    return "; ".join(lines) or json.dumps(reply)[:500]


def result_files(entry: dict) -> list[str]:
    """'type/subfolder/filename' of every file a finished prompt's nodes reported."""
    files = []
    for output in (entry.get("outputs") or {}).values():
        for items in output.values():
            for item in items if isinstance(items, list) else []:
                if isinstance(item, dict) and "filename" in item:
                    files.append(
                        "/".join(part for part in (item.get("type"), item.get("subfolder"), item["filename"]) if part)
                    )
    return files


def outcome(entry: dict) -> tuple[str, str]:
    """('success' | 'error' | 'interrupted', one-line cause) of a finished history entry."""
    for event, data in entry.get("status", {}).get("messages", []):
        if event == "execution_error":
            return (
                "error",
                f"{data.get('node_type')} (node {data.get('node_id')}): {data.get('exception_message', '').strip()}",
            )
        if event == "execution_interrupted":
            return "interrupted", f"interrupted at node {data.get('node_id')}"
    return entry.get("status", {}).get("status_str", "error"), ""


def _watch_websocket(client: Client, prompt_id: str, deadline: float, report) -> None:
    """Print progress events until the prompt finishes (or the deadline passes)."""
    import websocket  # websocket-client, optional

    url = client.url(f"/ws?clientId={client.client_id}").replace("http", "ws", 1)
    socket = websocket.create_connection(url, timeout=5)
    try:
        while time.time() < deadline:
            try:
                message = socket.recv()
            except websocket.WebSocketTimeoutException:
                if client.history(prompt_id):
                    return
                continue
            if not isinstance(message, str):
                continue  # binary preview frames
            event = json.loads(message)
            data = event.get("data", {})
            if data.get("prompt_id") not in (None, prompt_id):
                continue
            if event["type"] == "progress":
                report(f"  node {data['node']}: {data['value']}/{data['max']}")
            elif event["type"] == "executing" and data.get("node") is None and data.get("prompt_id") == prompt_id:
                return
            elif event["type"] in ("execution_error", "execution_interrupted", "execution_success"):
                return
    finally:
        socket.close()


def wait(client: Client, prompt_id: str, timeout: float, report=print) -> dict:
    """Wait for a queued prompt; returns its history entry.

    Raises:
        WorkflowError: no result within ``timeout`` seconds.
    """
    deadline = time.time() + timeout
    try:
        _watch_websocket(client, prompt_id, deadline, report)
    except ImportError:
        pass
    while time.time() < deadline:
        entry = client.history(prompt_id)
        if entry and entry.get("status", {}).get("completed") is not None:
            return entry
        time.sleep(POLL_SECONDS)
    raise WorkflowError(f"prompt {prompt_id} did not finish within {timeout:.0f} s")


def run(client: Client, graph: dict, timeout: float, report=print) -> tuple[str, str, list[str], dict]:
    """Queue ``graph`` and wait: (status, cause, result files, history entry)."""
    prompt_id = client.queue(graph)
    report(f"queued {prompt_id}")
    entry = wait(client, prompt_id, timeout, report)
    status, cause = outcome(entry)
    return status, cause, result_files(entry), entry


# --- command line ---------------------------------------------------------------------------------------


def _jobs(args, client: Client) -> list[tuple[str, list[str]]]:
    """(label, assignments) per run: one run, or one per clip (uploaded when it is a local file)."""
    if not args.clips:
        return [("run", list(args.set))]
    if args.mask_clips and len(args.mask_clips) != len(args.clips):
        raise WorkflowError(f"{len(args.clips)} clips but {len(args.mask_clips)} mask clips; give one mask per clip")
    jobs = []
    for index, clip in enumerate(args.clips):
        assignments = list(args.set) + [f"{args.clip_input}={_input_name(client, clip, args.upload)}"]
        if args.mask_clips:
            assignments.append(f"{args.mask_input}={_input_name(client, args.mask_clips[index], args.upload)}")
        jobs.append((clip, assignments))
    return jobs


def _input_name(client: Client, clip: str, upload: bool) -> str:
    path = Path(clip)
    return client.upload(path) if upload and path.is_file() else clip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "workflow", type=Path, help="API-format workflow JSON (Export (API) in ComfyUI, or workflows/api/*.json)"
    )
    parser.add_argument("--server", default=DEFAULT_SERVER, help=f"ComfyUI address (default {DEFAULT_SERVER})")
    parser.add_argument(
        "--set", action="append", default=[], metavar="NODE.INPUT=VALUE", help="change an input (repeatable)"
    )
    parser.add_argument("--clips", nargs="+", metavar="CLIP", help="run once per clip")
    parser.add_argument(
        "--clip-input", default="4.file", metavar="NODE.INPUT", help="input that receives each clip (default 4.file)"
    )
    parser.add_argument("--mask-clips", nargs="+", metavar="MASK", help="one mask clip per clip")
    parser.add_argument(
        "--mask-input",
        default="6.file",
        metavar="NODE.INPUT",
        help="input that receives each mask clip (default 6.file)",
    )
    parser.add_argument(
        "--no-upload",
        dest="upload",
        action="store_false",
        help="pass clip names as they are (already in ComfyUI's input folder)",
    )
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for each run (default 3600)")
    args = parser.parse_args(argv)

    client = Client(args.server)
    try:
        graph = json.loads(args.workflow.read_text())
        if "nodes" in graph and "links" in graph:
            raise WorkflowError(f"{args.workflow} is a UI workflow; use its API twin (example_workflows/api/) or Export (API)")
        jobs = _jobs(args, client)
    except (OSError, json.JSONDecodeError, WorkflowError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    failures = 0
    for number, (label, assignments) in enumerate(jobs, 1):
        print(f"[{number}/{len(jobs)}] {label}")
        started = time.time()
        try:
            status, cause, files, _entry = run(client, substitute(graph, assignments), args.timeout)
        except WorkflowError as error:
            status, cause, files = "error", str(error), []
        print(f"  {status} in {time.time() - started:.1f} s" + (f": {cause}" if cause else ""))
        previews = [path for path in files if path.startswith("temp/")]
        for path in files:
            if path not in previews:
                print(f"  -> {path}")
        if previews:
            print(f"  (+{len(previews)} preview images in ComfyUI's temp folder)")
        failures += status != "success"
    print(f"{len(jobs) - failures} succeeded, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
