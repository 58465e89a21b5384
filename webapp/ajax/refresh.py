"""The "Mettre à jour les données" control: start a refresh, poll its progress."""

from __future__ import annotations

import hmac

from flask import current_app
from flask import render_template
from flask import request

from webapp import refresh
from webapp.ajax import bp
from webapp.csrf import csrf_protect
from webapp.main.context import context_data
from webapp.store import get_store

#: htmx stops polling when a response has this status.
STOP_POLLING = 286


def _message(text: str, status: int, kind: str = "error"):
    return render_template("_refresh_message.html", text=text, kind=kind), status


@bp.post("/refresh")
@csrf_protect
def refresh_start():
    """Start a refresh in the background when the refresh token is right."""
    expected = current_app.config.get("REFRESH_TOKEN")
    if not expected:
        return _message(
            "La mise à jour depuis le site est désactivée : lancez "
            "« flask --app webapp data refresh » sur le serveur.",
            403,
        )
    given = request.form.get("token", "")
    if not hmac.compare_digest(given.encode(), str(expected).encode()):
        return _message("Jeton de mise à jour incorrect.", 403)
    try:
        sources = refresh.parse_sources(request.form.get("source", "all"))
    except ValueError:
        return _message(
            "Source inconnue : choisissez ademe, enedis, communes ou toutes.", 400
        )

    full = request.form.get("full") == "1"
    try:
        refresh.start_background(current_app._get_current_object(), sources, full)
    except refresh.RefreshBusy:
        status = refresh.current_status(get_store())
        return (
            render_template(
                "_refresh_progress.html",
                status=status,
                done=False,
                notice="Une mise à jour est déjà en cours : voici sa progression.",
            ),
            409,
        )
    status = refresh.current_status(get_store())
    return render_template("_refresh_progress.html", status=status, done=False), 202


@bp.get("/refresh/progress")
def refresh_progress():
    """Return the progress of the refresh; status 286 once it is over."""
    store = get_store()
    status = refresh.current_status(store)
    if status is None:
        return _message("Aucune mise à jour n'a été lancée.", STOP_POLLING, "info")
    if status["running"]:
        return render_template("_refresh_progress.html", status=status, done=False)

    # The job may have run in another worker: load what it wrote.
    store.check_for_update(0)
    if not store.is_current():
        # Under gunicorn new workers take over with the new data: poll on.
        notice = "Données téléchargées : mise en service des nouvelles données…"
        return render_template(
            "_refresh_progress.html", status=status, done=False, notice=notice
        )
    return (
        render_template(
            "_refresh_progress.html", status=status, done=True, **context_data()
        ),
        STOP_POLLING,
    )
