from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from .forms import SightingForm
from .jobs import after_report
from .models import Sighting

RECENT = 50


class HttpResponseSeeOther(HttpResponseRedirect):
    """303: after a POST, the browser (or load generator) follows with a GET."""

    status_code = 303


@require_GET
def sighting_list(request: HttpRequest) -> HttpResponse:
    sightings = Sighting.objects.all()[:RECENT]
    return render(request, "sightings/list.html", {"sightings": sightings})


@require_http_methods(["GET", "HEAD", "POST"])
def sighting_create(request: HttpRequest) -> HttpResponse:
    form = SightingForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            after_report(form.save())
            return HttpResponseSeeOther(reverse("sightings:list"))
        return render(request, "sightings/new.html", {"form": form}, status=400)
    return render(request, "sightings/new.html", {"form": form})
