"""A FastAPI app over one trained model: adapt to a user's few interactions, return the top k.

    metarec serve --model models/ml100k
    METAREC_MODEL=models/ml100k uvicorn --factory metarec.serve.app:create_app   # the same app

POST /recommend {"support": [{"item_id": 50, "rating": 5}], "profile": "...", "k": 10} ranks the
whole catalog for that user (support items left out; with "explain": true, each item says which
interactions and signals put it there); POST /recommend/batch does the same for many
users in one request ({"users": [{"user_id": ..., "support": [...], "profile": ...}], "k": 10}),
adapting users with the same number of interactions together; POST /score scores given items;
GET /health says which model is loaded; GET /docs is Swagger UI, served from files installed with
the package (it works offline).

Bad input (an unknown item, an item twice, a rating off the model's scale, a value of the wrong
type) is a 422 with the reason, never a 500; a request past `ServeLimits` is a 413 (body size) or a
422 (profile length, support size, list lengths). The model is loaded once, when the app is created;
requests are served one at a time (each adapts a copy of the head: a few ms on ML-100K). Profile
vectors computed while serving stay in a bounded in-memory LRU; nothing is written to disk.
"""

from __future__ import annotations

import hmac
import os
import threading
from pathlib import Path
from typing import Annotated, Union

import pandas as pd
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from metarec import __version__
from metarec.core.errors import ConfigError, MetarecError
from metarec.meta.recommender import AdaptedUser, MetaRecommender
from metarec.serve.batching import MicroBatcher
from metarec.serve.limits import LIMITS, ServeLimits
from metarec.serve.store import UserStore
from metarec.serve.users import user_routes



# strict: JSON true is not item 1, and "1" is not 1 (a catalog of string ids and one of numbers differ)
ItemId = Union[StrictInt, StrictStr]
UserId = Union[StrictInt, StrictStr]
Rating = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Profile = Annotated[str, Field(max_length=LIMITS.max_profile_chars,
                               description=f"Profile text, e.g. 'A 24-year-old male technician.' "
                                           f"(at most {LIMITS.max_profile_chars} characters)")]
K = Annotated[int, Field(strict=True, ge=1, le=LIMITS.max_k, description="How many items to return.")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not silently ignored


class Interaction(_In):
    item_id: ItemId
    rating: Rating | None = None  # None: an implicit interaction (or an unknown rating)


class UserIn(_In):
    support: list[Interaction] = Field(default_factory=list, max_length=LIMITS.max_support,
                                       description=f"The user's interactions (K may be 0; at most "
                                                   f"{LIMITS.max_support}).")
    profile: Profile | None = None


class RecommendIn(UserIn):
    k: K = 10
    explain: bool = Field(False, strict=True, description="Add to each item why it is there: each support item's and each "
                                             "signal's contribution to its score.")
    exclude: list[ItemId] = Field(default_factory=list, max_length=LIMITS.max_items,
                                  description="Items never to recommend (besides the support).")
    candidates: list[ItemId] | None = Field(None, max_length=LIMITS.max_items,
                                            description="Rank only these items (default: the whole catalog).")


class ScoreIn(UserIn):
    items: list[ItemId] = Field(..., min_length=1, max_length=LIMITS.max_items,
                                description="Items to score, each once.")


class Contribution(BaseModel):
    item_id: ItemId
    title: str | None
    contribution: float = Field(description="The item's score minus its score without this interaction.")


class Explanation(BaseModel):
    item_id: ItemId
    score: float
    support: list[Contribution]
    signals: dict[str, float] = Field(description="Each named signal's exact share of the score; 'interaction' "
                                                  "is the learned user x item rest.")


class Recommendation(BaseModel):
    rank: int
    item_id: ItemId
    title: str | None
    score: float
    explanation: Explanation | None = None
    because: str | None = None


class RecommendOut(BaseModel):
    recommendations: list[Recommendation]


class ScoreOut(BaseModel):
    scores: dict[str, float] = Field(description="Each requested item's score, keyed by its id as text.")


class BatchUserIn(UserIn):
    user_id: UserId


class BatchIn(_In):
    users: list[BatchUserIn] = Field(..., min_length=1, max_length=LIMITS.max_users)
    k: K = 10


class UserRecommendations(BaseModel):
    user_id: UserId
    recommendations: list[Recommendation]


class BatchOut(BaseModel):
    users: list[UserRecommendations]


class BodyLimit:
    """ASGI middleware: a request body over `max_bytes` is a 413, whether its Content-Length says so
    up front or the body runs past it while being read (chunked uploads)."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            response = JSONResponse(status_code=413, content={"detail": self._too_large()})
            return await response(scope, receive, send)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:  # raised inside the route's body read: FastAPI answers it
                raise HTTPException(status_code=413, detail=self._too_large())
            return message

        return await self.app(scope, limited, send)

    def _too_large(self) -> str:
        return f"request body larger than {self.max_bytes} bytes (ServeLimits.max_request_bytes)"


def create_app(model: MetaRecommender | str | Path | None = None, device: str | None = None,
               limits: ServeLimits | None = None, store: UserStore | str | Path | None = None,
               api_key: str | None = None) -> FastAPI:
    """The app over `model`: a loaded MetaRecommender, or a model folder (default: $METAREC_MODEL)
    loaded on `device` (default: $METAREC_DEVICE, else cpu). Raises ConfigError when no model is given.

    `store`: where the /users endpoints keep users (a UserStore or a SQLite file; default: in memory,
    gone with the process). `api_key` (default: $METAREC_API_KEY): when set, every endpoint but
    /health and /docs answers 401 without the header `X-API-Key: <key>`.

    `limits.max_request_bytes` and `limits.profile_cache` may be changed; the other limits are the
    request schema's and stay at `LIMITS` (they are in the OpenAPI document)."""
    limits = limits or LIMITS
    store = store if isinstance(store, UserStore) else UserStore(store or ":memory:")
    api_key = api_key if api_key is not None else os.environ.get("METAREC_API_KEY") or None

    def require_key(x_api_key: Annotated[str | None, Header()] = None) -> None:
        # compared in constant time: the time to refuse says nothing about the key
        if api_key is not None and not hmac.compare_digest((x_api_key or "").encode(), api_key.encode()):
            raise HTTPException(status_code=401, detail="missing or wrong X-API-Key header")

    keyed = [Depends(require_key)]
    if isinstance(model, MetaRecommender):
        rec, model_dir = model, getattr(model, "path", None)
    else:
        model_dir = model or os.environ.get("METAREC_MODEL")
        if not model_dir:
            raise ConfigError("no model: pass a model folder or set METAREC_MODEL to one written by "
                              "`metarec meta-train`")
        rec = MetaRecommender.load(model_dir, device=device or os.environ.get("METAREC_DEVICE", "cpu"))
    rec.keep_profiles_in_memory(limits.profile_cache)
    lock = threading.Lock()
    app = FastAPI(title="metarec", version=__version__, docs_url=None, redoc_url=None,
                  description="Few-shot recommendation for new users from a meta-trained model. Limits per "
                              f"request: a body of at most {limits.max_request_bytes} bytes (else 413); at most "
                              f"{LIMITS.max_support} interactions per user, profiles of at most "
                              f"{LIMITS.max_profile_chars} characters, {LIMITS.max_users} users per batch and "
                              f"{LIMITS.max_items} items per list (else 422).")
    app.add_middleware(BodyLimit, max_bytes=limits.max_request_bytes)
    _self_hosted_docs(app)

    @app.exception_handler(MetarecError)
    def bad_input(request: Request, e: MetarecError) -> JSONResponse:
        # an unknown item, an item twice, a rating off the scale: the request's fault, said plainly
        return JSONResponse(status_code=422, content={"detail": str(e).strip("'\"")})

    batcher = MicroBatcher(rec, lock, max_wait_s=limits.batch_wait_ms / 1000)

    def adapt(body: UserIn) -> AdaptedUser:
        ids = [x.item_id for x in body.support]
        ratings = [float("nan") if x.rating is None else x.rating for x in body.support]
        return batcher.adapt(ids, ratings=ratings, profile=body.profile)

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", "model": str(model_dir), "dataset": rec.info.dataset, "items": rec.side.n_items,
                "device": str(rec.device), "version": __version__}

    @app.post("/recommend", response_model=RecommendOut, dependencies=keyed)
    def recommend(body: RecommendIn) -> RecommendOut:
        user = adapt(body)
        with lock:  # explaining re-adapts the user K times on the shared model
            rows = user.ranked(body.k, exclude=body.exclude, candidates=body.candidates, explain=body.explain)
        return RecommendOut(recommendations=[Recommendation(**r) for r in rows])

    @app.post("/score", response_model=ScoreOut, dependencies=keyed)
    def score(body: ScoreIn) -> ScoreOut:
        # the answer is keyed by the id as text: 1 and "1" (one item, or two items whose keys
        # collide) would share a key, so each item is asked for once
        seen: dict = {}
        for i, n in zip(body.items, rec.index_of(body.items).tolist()):
            first = seen.get(n, seen.get(str(i)))
            if first is not None:
                raise ConfigError(f"items: item {i!r} is listed twice (as {first!r} and {i!r}); list each item once")
            seen[n] = seen[str(i)] = i
        s = adapt(body).score(body.items)
        return ScoreOut(scores={str(i): float(v) for i, v in zip(body.items, s)})

    @app.post("/recommend/batch", response_model=BatchOut, dependencies=keyed)
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

    app.include_router(user_routes(rec, store, lock, batcher, limits.profile_cache), dependencies=keyed)
    app.state.store, app.state.batcher = store, batcher
    return app


def _self_hosted_docs(app: FastAPI) -> None:
    """/docs as Swagger UI from the swagger-ui-bundle package's files (FastAPI's self-hosting recipe),
    so the page works on a machine without internet; without that package /docs says how to get it."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ModuleNotFoundError:
        swagger_ui_path = None
    if swagger_ui_path is not None:
        app.mount("/docs-static", StaticFiles(directory=swagger_ui_path), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        if swagger_ui_path is None:
            return HTMLResponse("Swagger UI needs the swagger-ui-bundle-v2 package: pip install 'metarec[serve]'. "
                                "The OpenAPI document is at /openapi.json.", status_code=501)
        return get_swagger_ui_html(openapi_url=app.openapi_url, title="metarec - API",
                                   swagger_js_url="/docs-static/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-static/swagger-ui.css",
                                   swagger_favicon_url="/docs-static/favicon-32x32.png")
