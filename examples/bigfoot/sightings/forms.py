from django import forms

from .models import Sighting


class SightingForm(forms.ModelForm):
    class Meta:
        model = Sighting
        fields = ["location", "seen_at", "description", "reporter"]
        labels = {"location": "Where", "seen_at": "When (UTC)", "reporter": "Your name"}
        widgets = {
            "seen_at": forms.DateTimeInput(
                attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"
            ),
            "description": forms.Textarea(attrs={"rows": 4}),
        }
