from django import forms

from .models import Sighting


class SightingForm(forms.ModelForm):
    class Meta:
        model = Sighting
        fields = ["location", "seen_at", "description", "reporter", "gdpr_accepted"]
        labels = {
            "location": "Where",
            "seen_at": "When (UTC)",
            "reporter": "Your name",
            "gdpr_accepted": "I agree that my report and name are published",
        }
        widgets = {
            "seen_at": forms.DateTimeInput(
                attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"
            ),
            "description": forms.Textarea(attrs={"rows": 4}),
        }
