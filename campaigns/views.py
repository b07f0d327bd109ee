"""Public tracking endpoints (no login): open pixel, click redirect, unsubscribe page and the
RFC 8058 one-click unsubscribe (POST). Staff pages come with the web UI."""
from __future__ import annotations

import base64
import logging

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from . import tracking

logger = logging.getLogger(__name__)

_PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


@never_cache
@require_GET
def open_pixel(request: HttpRequest, token: str) -> HttpResponse:
    try:
        tracking.track_open(token=token)
    except tracking.BadToken:
        pass  # a pixel always answers with the pixel
    return HttpResponse(_PIXEL, content_type="image/gif")


@never_cache
@require_GET
def click_redirect(request: HttpRequest, token: str) -> HttpResponse:
    try:
        url = tracking.track_click(token=token)
    except tracking.BadToken:
        return HttpResponseBadRequest("This link is not valid.", content_type="text/plain")
    return HttpResponseRedirect(url)


@csrf_exempt  # RFC 8058: mail providers POST without a session or CSRF token; the signed token is the proof
@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET: a page with one button (no change on GET: link scanners prefetch URLs).
    POST: unsubscribe, from that button or from a one-click List-Unsubscribe-Post."""
    try:
        message = tracking.unsubscribe_message(token)
    except tracking.BadToken:
        return render(request, "campaigns/public/unsubscribe.html", {"invalid": True}, status=400)
    if request.method == "POST":
        tracking.unsubscribe(token=token)
        if request.POST.get("List-Unsubscribe") == "One-Click":
            return HttpResponse("Unsubscribed.", content_type="text/plain")
        return render(request, "campaigns/public/unsubscribe.html", {"done": True})
    return render(request, "campaigns/public/unsubscribe.html",
                  {"already": message.customer.unsubscribed_at is not None})
