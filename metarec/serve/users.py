"""The stateful endpoints: users the service remembers (`UserStore`), their events, their lists.

    PUT    /users/{id}                  {"profile": "..."}             create, or replace the profile
    POST   /users/{id}/events           {"events": [{"item_id": 50, "rating": 5, "time": 1700000000}]}
    GET    /users/{id}/recommendations  ?k=10&explain=false&exclude_seen=true
    DELETE /users/{id}

A user's list is computed from their stored events: the model adapts to them from its start (the
inner loop's few steps on at most 1,000 events take milliseconds), so the list is a function of what
is stored, the same after a restart, whatever order concurrent writers took; adapted users are
cached in memory by (user, version) and re-adapted only when their events or profile change. There
is no endpoint that lists users.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from metarec.core.errors import ConfigError
from metarec.meta.recommender import AdaptedUser, MetaRecommender
from metarec.meta.user import plain_id
from metarec.serve.batching import MicroBatcher
from metarec.serve.limits import LIMITS
from metarec.serve.store import UserStore

UserKey = Annotated[str, Path(min_length=1, max_length=200, description="The user's id (your own).")]
ListLength = Annotated[int, Query(ge=1, le=LIMITS.max_k, description="How many items to return.")]


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item_id: StrictInt | StrictStr
    rating: Annotated[float, Field(strict=True, allow_inf_nan=False)] | None = None
    time: Annotated[float, Field(strict=True, allow_inf_nan=False, description="Unix seconds (default: when the "
                                 "event arrives); events are ordered by it, an earlier one is accepted and ordered")] | None = None


class ProfileIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    profile: Annotated[str, Field(max_length=LIMITS.max_profile_chars)] | None = None


class EventsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    events: list[Event] = Field(..., min_length=1, max_length=LIMITS.max_support)


def user_routes(rec: MetaRecommender, store: UserStore, model_lock: threading.Lock, batcher: MicroBatcher,
                cache_size: int = 10_000) -> APIRouter:
    """The /users endpoints over `rec` and `store`; `model_lock` is the app's lock on the model."""
    max_support = LIMITS.max_support
    router = APIRouter(prefix="/users", tags=["users"])
    adapted: OrderedDict[str, tuple[int, AdaptedUser]] = OrderedDict()
    cache_lock = threading.Lock()

    def user_of(user_id: str) -> AdaptedUser:
        stored = store.get(user_id)
        if stored is None:
            raise HTTPException(status_code=404, detail=f"no user {user_id!r}")
        with cache_lock:
            hit = adapted.get(user_id)
            if hit is not None and hit[0] == stored.version:
                adapted.move_to_end(user_id)
                return hit[1]
        ids = [i for i, _ in stored.support]
        ratings = [math.nan if r is None else r for _, r in stored.support]
        user = batcher.adapt(ids, ratings=ratings, profile=stored.profile)
        with cache_lock:
            adapted[user_id] = (stored.version, user)
            adapted.move_to_end(user_id)
            while len(adapted) > cache_size:
                adapted.popitem(last=False)
        return user

    @router.put("/{user_id}", status_code=200)
    def put_user(user_id: UserKey, body: ProfileIn, response: Response) -> dict:
        with store.lock(user_id):
            if store.put_user(user_id, body.profile):
                response.status_code = 201
        return {"user_id": user_id}

    @router.post("/{user_id}/events")
    def post_events(user_id: UserKey, body: EventsIn) -> dict:
        items = [e.item_id for e in body.events]
        idx = rec.index_of(items)  # an unknown item: a 422 before anything is written
        ratings = [math.nan if e.rating is None else e.rating for e in body.events]
        bad = rec.off_scale(ratings)
        if bad.any():
            j = int(bad.argmax())
            raise ConfigError(f"events[{j}].rating: {ratings[j]:g} is outside this model's {rec.rating_scale}")
        # one catalog item may be named 1 or "1": stored under the catalog's own id, it is one item
        canonical = [plain_id(rec.item_ids[i]) for i in idx]
        with store.lock(user_id):
            before = store.get(user_id)
            known = {i for i, _ in before.support} if before else set()
            if len(known | set(canonical)) > max_support:
                raise ConfigError(f"events: the user would have more than {max_support} distinct items")
            now = time.time()  # an event without a time happened when it arrived
            n = store.add_events(user_id, [(c, e.rating, now if e.time is None else e.time)
                                           for c, e in zip(canonical, body.events)])
        return {"user_id": user_id, "events": n}

    @router.get("/{user_id}/recommendations")
    def recommendations(user_id: UserKey, k: ListLength = 10, explain: bool = False,
                        exclude_seen: bool = True) -> dict:
        user = user_of(user_id)
        with model_lock:  # explaining re-adapts on the shared model
            rows = user.ranked(k, explain=explain, exclude_support=exclude_seen)
        return {"user_id": user_id, "recommendations": rows}

    @router.delete("/{user_id}", status_code=204)
    def delete_user(user_id: UserKey) -> Response:
        with store.lock(user_id):
            if not store.delete(user_id):
                raise HTTPException(status_code=404, detail=f"no user {user_id!r}")
        with cache_lock:
            adapted.pop(user_id, None)
        return Response(status_code=204)

    return router
