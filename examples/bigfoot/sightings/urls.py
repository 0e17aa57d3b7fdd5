from django.urls import path

from . import views

app_name = "sightings"
urlpatterns = [
    path("", views.sighting_list, name="list"),
    path("sightings/new/", views.sighting_create, name="create"),
]
