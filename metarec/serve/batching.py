"""Dynamic micro-batching: the users of requests that arrive together are adapted and scored as one
batch (as `recommend_many` batches users of equal K), instead of one at a time under the model lock.

A request thread hands its user to `MicroBatcher.adapt` and waits; one worker thread takes whatever
has queued (up to `max_batch`, waiting at most `max_wait_s` for more once the first arrives), groups
it by support size, and scores each group in one pass. Each user's scores are the ones `adapt` alone
gives (a row depends on that user's inputs only: `MetaRecommender._score_chunk`).
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future

import numpy as np

from metarec.core.threads import numpy_single_thread
from metarec.meta.recommender import AdaptedUser, MetaRecommender


class MicroBatcher:
    """Adapts users for concurrent requests in batches. `lock` is the app's lock on the model;
    `max_wait_s` = 0 turns batching off (each request is adapted on its own thread, as before)."""

    def __init__(self, rec: MetaRecommender, lock: threading.Lock, max_batch: int = 64,
                 max_wait_s: float = 0.002) -> None:
        self.rec, self.lock, self.max_batch, self.max_wait_s = rec, lock, max_batch, max_wait_s
        self.batches = 0  # batches scored, for tests and the load benchmark
        self._queue: queue.Queue = queue.Queue()
        if max_wait_s > 0:
            threading.Thread(target=self._work, name="metarec-batcher", daemon=True).start()

    def adapt(self, support_items, ratings=None, profile: str | None = None) -> AdaptedUser:
        """`rec.adapt(...)`, scored in a batch with the requests that arrive with it."""
        with self.lock:  # the checks and the profile cache share the model
            if self.max_wait_s <= 0:
                return self.rec.adapt(support_items, ratings, profile)
            idx, r, vec = self.rec.user_inputs(support_items, ratings, profile)
        done: Future = Future()
        self._queue.put((idx, r, vec, done))
        return AdaptedUser(self.rec, idx, r, vec, profile, scores=done.result())

    def _work(self) -> None:
        while True:
            batch = [self._queue.get()]
            try:
                while len(batch) < self.max_batch:
                    batch.append(self._queue.get(timeout=self.max_wait_s))
            except queue.Empty:
                pass
            self._score(batch)

    def _score(self, batch: list) -> None:
        try:
            with self.lock, numpy_single_thread():  # as score_batch scores
                weights = self.rec.scoring_weights()
                for k in sorted({len(b[0]) for b in batch}):
                    group = [b for b in batch if len(b[0]) == k]
                    sup = np.stack([b[0] for b in group]).reshape(len(group), k)
                    rat = np.stack([b[1] for b in group]).reshape(len(group), k)
                    prof = np.stack([b[2] for b in group])
                    scores = self.rec._score_chunk(sup, rat, prof, weights)
                    for b, s in zip(group, scores):
                        b[3].set_result(s)
                self.batches += 1
        except BaseException as e:  # every waiting request gets the error, none hangs
            for b in batch:
                if not b[3].done():
                    b[3].set_exception(e)
