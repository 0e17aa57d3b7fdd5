from django import forms

from .models import Entry


class EntryForm(forms.ModelForm):
    class Meta:
        model = Entry
        fields = ["notebook", "title", "body", "attachment"]
        widgets = {"body": forms.Textarea(attrs={"rows": 5})}
