"""A FastAPI app over one trained model: adapt to a user's few interactions, return the top k.

    METAREC_MODEL=models/ml100k uvicorn --factory metarec.serve.app:create_app
    metarec serve --model models/ml100k            # the same, through the CLI

POST /recommend {"support": [{"item_id": 50, "rating": 5}], "profile": "...", "k": 10} ranks the
whole catalog for that user (support items left out); POST /recommend/batch does the same for many
users in one request ({"users": [{"user_id": ..., "support": [...], "profile": ...}], "k": 10}),
adapting users with the same number of interactions together; POST /score scores given items;
GET /health says which model is loaded. Bad input (an unknown item, an item twice, a rating off the
model's scale) is a 422 with the reason, never a 500. The model is loaded once, when the app is
created; requests are served one at a time (each adapts a copy of the head: a few ms on ML-100K).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Union

import pandas as pd
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from metarec import __version__
from metarec.core.errors import ConfigError, MetarecError
from metarec.meta.recommender import AdaptedUser, MetaRecommender

ItemId = Union[int, str]
UserId = Union[int, str]


class Interaction(BaseModel):
    item_id: ItemId
    rating: float | None = None  # None: an implicit interaction (or an unknown rating)


class UserIn(BaseModel):
    support: list[Interaction] = Field(default_factory=list, description="The user's interactions (K may be 0).")
    profile: str | None = Field(None, description="Profile text, e.g. 'A 24-year-old male technician.'")


class RecommendIn(UserIn):
    k: int = Field(10, ge=1, le=10_000)
    exclude: list[ItemId] = Field(default_factory=list, description="Items never to recommend (besides the support).")
    candidates: list[ItemId] | None = Field(None, description="Rank only these items (default: the whole catalog).")


class ScoreIn(UserIn):
    items: list[ItemId] = Field(..., min_length=1, max_length=100_000)


class Recommendation(BaseModel):
    rank: int
    item_id: ItemId
    title: str | None
    score: float


class RecommendOut(BaseModel):
    recommendations: list[Recommendation]


class ScoreOut(BaseModel):
    scores: dict[str, float]


class BatchUserIn(UserIn):
    user_id: UserId


class BatchIn(BaseModel):
    users: list[BatchUserIn] = Field(..., min_length=1, max_length=100_000)
    k: int = Field(10, ge=1, le=10_000)


class UserRecommendations(BaseModel):
    user_id: UserId
    recommendations: list[Recommendation]


class BatchOut(BaseModel):
    users: list[UserRecommendations]


def create_app(model_dir: str | Path | None = None, device: str | None = None) -> FastAPI:
    """The app for the model in `model_dir` (default: $METAREC_MODEL) on `device` (default:
    $METAREC_DEVICE, else cpu). Raises ConfigError when no model folder is given."""
    model_dir = model_dir or os.environ.get("METAREC_MODEL")
    if not model_dir:
        raise ConfigError("no model: pass model_dir or set METAREC_MODEL to a folder written by `metarec meta-train`")
    rec = MetaRecommender.load(model_dir, device=device or os.environ.get("METAREC_DEVICE", "cpu"))
    lock = threading.Lock()
    app = FastAPI(title="metarec", version=__version__,
                  description="Few-shot recommendation for new users from a meta-trained model.")

    @app.exception_handler(MetarecError)
    def bad_input(request: Request, e: MetarecError) -> JSONResponse:
        # an unknown item, an item twice, a rating off the scale: the request's fault, said plainly
        return JSONResponse(status_code=422, content={"detail": str(e).strip("'\"")})

    def adapt(body: UserIn) -> AdaptedUser:
        ids = [x.item_id for x in body.support]
        ratings = [float("nan") if x.rating is None else x.rating for x in body.support]
        with lock:
            return rec.adapt(ids, ratings=ratings, profile=body.profile)

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "model": str(model_dir), "dataset": rec.info.dataset, "items": rec.side.n_items,
                "device": str(rec.device), "version": __version__}

    @app.post("/recommend", response_model=RecommendOut)
    def recommend(body: RecommendIn) -> RecommendOut:
        rows = adapt(body).ranked(body.k, exclude=body.exclude, candidates=body.candidates)
        return RecommendOut(recommendations=[Recommendation(**r) for r in rows])

    @app.post("/score", response_model=ScoreOut)
    def score(body: ScoreIn) -> ScoreOut:
        s = adapt(body).score(body.items)
        return ScoreOut(scores={str(i): float(v) for i, v in zip(body.items, s)})

    @app.post("/recommend/batch", response_model=BatchOut)
    def recommend_batch(body: BatchIn) -> BatchOut:
        ids = [u.user_id for u in body.users]
        if len(set(ids)) < len(ids):
            twice = next(i for n, i in enumerate(ids) if i in ids[:n])
            raise ConfigError(f"user {twice!r} given twice")
        # rows labelled by where they sit in the request, so an error names e.g. users[1].support[0]
        log = pd.DataFrame([(u.user_id, x.item_id, float("nan") if x.rating is None else x.rating)
                            for u in body.users for x in u.support], columns=["user_id", "item_id", "rating"],
                           index=[f"users[{n}].support[{j}]" for n, u in enumerate(body.users)
                                  for j in range(len(u.support))])
        with lock:
            recs = rec.recommend_many(log, body.k, profiles={u.user_id: u.profile for u in body.users})
        rows: dict = {}
        for u, r, i, t, sc in recs.itertuples(index=False):
            rows.setdefault(u, []).append(Recommendation(rank=int(r), item_id=i, title=t, score=float(sc)))
        return BatchOut(users=[UserRecommendations(user_id=u, recommendations=rows.get(u, [])) for u in ids])

    return app
