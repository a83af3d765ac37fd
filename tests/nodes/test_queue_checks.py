"""The queued prompt the queue-time checks read: kept per request by the on-prompt hook, links left out,
never another node's or another request's values."""

from __future__ import annotations

import contextvars

PROMPT = {
    "5": {"class_type": "RelightVidSampler", "inputs": {"iie_factors": "1.0", "window_length": ["9", 0], "seed": 3}},
    "6": {"class_type": "RelightVidFitFrames", "inputs": {"width": 64}},
}


def _in_fresh_context(function):
    return contextvars.copy_context().run(function)


def test_the_hook_hands_the_prompt_back_unchanged(pack):
    host = pack.module.nodes.host
    body = {"prompt": PROMPT, "client_id": "x"}
    assert _in_fresh_context(lambda: host.remember_queued_prompt(body)) is body


def test_widget_values_of_the_queued_node_without_links(pack):
    host = pack.module.nodes.host

    def read():
        host.remember_queued_prompt({"prompt": PROMPT})
        return host.queued_widget_values("5", "RelightVidSampler"), host.queued_widget_values(5, "RelightVidSampler")

    assert _in_fresh_context(read) == ({"iie_factors": "1.0", "seed": 3},) * 2


def test_nothing_for_another_class_a_missing_node_or_no_prompt(pack):
    host = pack.module.nodes.host

    def read():
        host.remember_queued_prompt({"prompt": PROMPT})
        return host.queued_widget_values("6", "RelightVidSampler"), host.queued_widget_values("7", "RelightVidSampler")

    assert _in_fresh_context(read) == (None, None)
    assert _in_fresh_context(lambda: host.queued_widget_values("5", "RelightVidSampler")) is None

    def forget():  # a body without a prompt forgets the last one
        host.remember_queued_prompt({"prompt": PROMPT})
        host.remember_queued_prompt({"number": 1})
        return host.queued_widget_values("5", "RelightVidSampler")

    assert _in_fresh_context(forget) is None


def test_a_request_never_sees_another_requests_prompt(pack):
    host = pack.module.nodes.host
    other = {"5": {"class_type": "RelightVidSampler", "inputs": {"iie_factors": "bright"}}}
    first = contextvars.copy_context()
    second = contextvars.copy_context()
    first.run(host.remember_queued_prompt, {"prompt": PROMPT})
    second.run(host.remember_queued_prompt, {"prompt": other})
    assert first.run(host.queued_widget_values, "5", "RelightVidSampler")["iie_factors"] == "1.0"
    assert second.run(host.queued_widget_values, "5", "RelightVidSampler") == {"iie_factors": "bright"}
