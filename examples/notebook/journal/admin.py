from django.contrib import admin

from .models import Entry, Notebook


@admin.register(Notebook)
class NotebookAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]


@admin.register(Entry)
class EntryAdmin(admin.ModelAdmin):
    list_display = ["title", "notebook", "created_at"]
    list_filter = ["notebook"]
