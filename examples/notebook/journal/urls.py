from django.urls import path

from . import views

app_name = "journal"
urlpatterns = [
    path("", views.entry_list, name="entries"),
    path("notebooks/", views.notebook_list, name="notebooks"),
    path("entries/new/", views.entry_create, name="create"),
]
