from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from .forms import EntryForm
from .models import Entry, Notebook

RECENT = 30


class HttpResponseSeeOther(HttpResponseRedirect):
    """303: after the POST, the browser follows with a GET of the list."""

    status_code = 303


@require_GET
def entry_list(request: HttpRequest) -> HttpResponse:
    entries = Entry.objects.select_related("notebook")[:RECENT]
    return render(request, "journal/entry_list.html", {"entries": entries})


@require_GET
def notebook_list(request: HttpRequest) -> HttpResponse:
    notebooks = Notebook.objects.annotate(entry_count=Count("entries"))
    return render(request, "journal/notebook_list.html", {"notebooks": notebooks})


@require_http_methods(["GET", "HEAD", "POST"])
def entry_create(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return render(request, "journal/entry_form.html", {"form": EntryForm()})
    form = EntryForm(request.POST, request.FILES)
    if not form.is_valid():
        return render(request, "journal/entry_form.html", {"form": form}, status=400)
    form.save()
    return HttpResponseSeeOther(reverse("journal:entries"))
