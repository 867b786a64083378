"""The retrain button's API (admins): `POST /api/retrain` starts training a candidate in the
background (409 while one runs), `GET /api/retrain` says how far it is, then the gate's verdict:
deployed, or refused with the reasons and the live model untouched."""

from __future__ import annotations

from aiohttp import web

from gateway.console.auth import Caller, error, needs
from gateway.console.roles import RETRAIN
from gateway.retrain_job import Busy, Retrainer
from gateway.services import SERVICES

RETRAINER: web.AppKey[Retrainer] = web.AppKey("retrainer", Retrainer)


@needs(RETRAIN)
async def status(request: web.Request, who: Caller) -> web.Response:
    return web.json_response(request.app[RETRAINER].status.json())


@needs(RETRAIN)
async def start(request: web.Request, who: Caller) -> web.Response:
    job = request.app[RETRAINER]
    try:
        job.start(who.agent.name)
    except Busy as exc:
        raise error(409, str(exc), status=job.status.json()) from None
    return web.json_response(job.status.json(), status=202)


async def _stop(app: web.Application) -> None:
    await app[RETRAINER].close()


def register(app: web.Application) -> None:
    app[RETRAINER] = Retrainer(app[SERVICES].settings)
    app.on_cleanup.append(_stop)
    app.router.add_get("/api/retrain", status)
    app.router.add_post("/api/retrain", start)
