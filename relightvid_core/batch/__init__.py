"""Many clips in one run: ``relightvid batch``, in this process or on a Ray cluster, resumable.

The parts, in the order a batch uses them:

* :mod:`.manifest` reads the rows of a JSON Lines or CSV manifest;
* :mod:`.plan` turns each row into a checked :class:`~.plan.BatchJob` (or a refusal naming row and column),
  before any model loads;
* :mod:`.run` skips what is done, runs the rest and appends each result to ``results.jsonl``
  (:mod:`.results`), here or through :mod:`.on_ray` (the only module that imports Ray, and only when asked);
* :mod:`.worker` relights one job after another with models loaded once, the same code in every worker.

Nothing here is imported by ``import relightvid_core``.
"""
